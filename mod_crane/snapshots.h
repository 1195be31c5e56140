// The index snapshot of each data dir: built once at start-up (in a
// short-lived process, before the children fork), rebuilt by a mod_watchdog
// singleton when files change, mapped by every child (and followed by a
// mod_watchdog child watchdog in each, idle or not). The shared status
// page of each data dir is what mod_status (and any other reader of the
// figures) shows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apache_includes.h"
#include "config.h"
#include "crane/snapshot_store.h"

namespace mod_crane {

// mod_watchdog's functions, or a crit line saying how to load it.
bool require_watchdog(server_rec* s);

// post_config, the one call: prepares CraneSnapshotDir, builds (or adopts
// and brings up to date) the snapshot of every data dir the servers name,
// hands each builder to the watchdog singleton and each reader to the
// child watchdog that follows new generations. False when it failed
// (logged): httpd does not start.
bool start_snapshots(apr_pool_t* pconf, server_rec* main_server, const std::vector<ServerSetup>& servers);

// This process's reader of a data dir's snapshot (after start_snapshots).
std::shared_ptr<crane::SnapshotSource> snapshot_source(const std::string& data_dir);

// child_init: maps every snapshot before the child takes requests.
void map_snapshots(server_rec* s);

// What one data dir's snapshot looks like from this process.
struct SnapshotState {
    std::string data_dir;
    crane::ScanStatusCopy status;          // the shared page: what the builder last wrote
    std::uint64_t mapped_generation = 0;   // the generation this process maps
};
std::vector<SnapshotState> snapshot_states();

}  // namespace mod_crane
