// The process's signals belong to its main thread.
#pragma once

namespace crane {

// Blocks, in the calling thread only, the signals httpd sends to stop or
// restart a process (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGWINCH), so the
// kernel hands them to a thread that has not: the main thread, whose handler
// runs the process's exit cleanups. A helper thread that took one would run
// those cleanups itself, and they join helper threads (itself among them).
// Once per thread; later calls cost a thread-local load.
void leave_process_signals_to_the_main_thread();

}  // namespace crane
