// Stable ids of every log line mod_crane writes, module and library alike.
// A line's message starts with its id: `CRANE0104: metadata file ... skipped`
// (module lines then say `mod_crane: `, as httpd's AHnnnnn lines name their
// program). Ids never change meaning and are never reused; wording may.
// docs/log-ids.md lists each with its level and meaning: keep the two in step.
#pragma once

namespace crane::log_id {

// ---- the module (mod_crane/): 0001-0099 ----
inline constexpr char kIniWarning[] = "CRANE0001";          // warn: CraneConfig file warning
inline constexpr char kConfigFatal[] = "CRANE0002";         // crit: configuration issue, httpd stops
inline constexpr char kConfigWarning[] = "CRANE0003";       // warn: configuration issue, httpd runs
inline constexpr char kContentDirMissing[] = "CRANE0004";   // warn: content_dir_v1/v2 not a directory
inline constexpr char kFallbackIni[] = "CRANE0005";         // crit: CRANE_CONFIG_PATH or /etc/crane.conf unreadable
inline constexpr char kConfigCheckFailed[] = "CRANE0006";   // crit: check_config failed unexpectedly
inline constexpr char kEffectiveConfig[] = "CRANE0007";     // debug: a server's effective configuration
inline constexpr char kStartupFailed[] = "CRANE0008";       // crit: post_config failed
inline constexpr char kWatcherStart[] = "CRANE0009";        // error: metadata watcher did not start (no longer written)
inline constexpr char kContentNotFound[] = "CRANE0010";     // debug: serve-content file missing
inline constexpr char kContentOpen[] = "CRANE0011";         // error: serve-content file cannot be opened
inline constexpr char kContentSend[] = "CRANE0012";         // debug: sending a file failed (client gone)
inline constexpr char kNotInitialised[] = "CRANE0013";      // error: no registry for this server
inline constexpr char kInternalError[] = "CRANE0014";       // error: the handler failed unexpectedly
inline constexpr char kDirectiveFailed[] = "CRANE0015";     // error: a directive failed unexpectedly
inline constexpr char kCleanupFailed[] = "CRANE0016";       // error: a pool cleanup failed unexpectedly
inline constexpr char kSnapshotSetup[] = "CRANE0017";       // crit: CraneSnapshotDir unusable
inline constexpr char kStatusFailed[] = "CRANE0018";        // error: the mod_status section failed unexpectedly
inline constexpr char kTranslateFailed[] = "CRANE0019";     // error: translate_name failed unexpectedly
inline constexpr char kTypeCheckFailed[] = "CRANE0020";     // error: type_checker failed unexpectedly
inline constexpr char kServerConfFailed[] = "CRANE0021";    // crit: creating a server configuration failed
inline constexpr char kMergeFailed[] = "CRANE0022";         // crit: merging a server configuration failed
inline constexpr char kDirectiveTableFailed[] = "CRANE0023"; // crit: building the directive table failed
inline constexpr char kWatchdogMissing[] = "CRANE0024";     // crit: mod_watchdog is not loaded
inline constexpr char kWatchdogInstance[] = "CRANE0025";    // crit: no mod_watchdog instance
inline constexpr char kWatchdogRegister[] = "CRANE0026";    // crit: a snapshot builder not registered with mod_watchdog
inline constexpr char kStartupBuildFailed[] = "CRANE0027";  // error: the start-up build failed
inline constexpr char kStartupBuildEnded[] = "CRANE0028";   // error: the start-up build's process ended abnormally
inline constexpr char kSnapshotMapFailed[] = "CRANE0029";   // error: a child could not map a snapshot at start

// ---- the index (lib/src/index/snapshot_store.cpp): 0100-0199 ----
inline constexpr char kDataDirProblem[] = "CRANE0101";      // error: data_dir missing or unreadable
inline constexpr char kMetadataKept[] = "CRANE0102";        // error: bad file, its last good content kept
inline constexpr char kMetadataWithdrawn[] = "CRANE0103";   // error: bad file, its repository not served
inline constexpr char kMetadataSkipped[] = "CRANE0104";     // error: bad file, never loaded
inline constexpr char kIndexWarning[] = "CRANE0105";        // warn: index conflict (e.g. a repo defined twice)
inline constexpr char kMetadataLoaded[] = "CRANE0106";      // info: a reload's summary
inline constexpr char kReloadFailed[] = "CRANE0107";        // error: a watchdog rebuild failed unexpectedly
inline constexpr char kWatcherFailed[] = "CRANE0108";       // error: the watcher thread failed or could not stop (no longer written)
inline constexpr char kSnapshotWrite[] = "CRANE0109";       // error: a snapshot could not be written or renamed
inline constexpr char kSnapshotRefused[] = "CRANE0110";     // error: the builder's snapshot file failed validation; rebuilt
inline constexpr char kChangeNoticeOff[] = "CRANE0111";     // warn: changes not notified (NFS, no inotify, watch limit); polling only
inline constexpr char kSnapshotNotSwitched[] = "CRANE0130"; // error: a reader's new snapshot failed validation; old one kept

// ---- entitlement (lib/src/api/registry.cpp): 0200-0299 ----
inline constexpr char kCertUnverified[] = "CRANE0201";      // debug: mod_ssl did not verify the certificate
inline constexpr char kCertUnparsable[] = "CRANE0202";      // debug: the certificate cannot be parsed
inline constexpr char kCertExpired[] = "CRANE0203";         // debug: outside its validity dates

// ---- search (lib/src/api/registry.cpp): 0300-0399 ----
inline constexpr char kSearchFailed[] = "CRANE0301";        // error: the search backend failed
inline constexpr char kSearchNotice[] = "CRANE0302";        // warn: the search backend answered oddly

// ---- metrics (mod_crane/metrics.cpp): 0400-0499 ----
inline constexpr char kMetricsMemory[] = "CRANE0401";       // crit: the metrics' shared memory could not be made
inline constexpr char kMetricsReset[] = "CRANE0402";        // info: the counters' shape changed on a restart; they start again
inline constexpr char kMetricsPageFailed[] = "CRANE0403";   // error: the crane-metrics page failed unexpectedly
inline constexpr char kMetricsCountFailed[] = "CRANE0404";  // error: counting a request failed unexpectedly
inline constexpr char kMetricsOff[] = "CRANE0405";          // debug: crane-metrics asked for with CraneMetrics Off

}  // namespace crane::log_id
