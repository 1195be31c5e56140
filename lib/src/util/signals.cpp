#include "crane/signals.h"

#include <pthread.h>
#include <signal.h>

#include <initializer_list>

namespace crane {

void leave_process_signals_to_the_main_thread() {
    thread_local bool done = false;
    if (done) return;
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGWINCH}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    done = true;
}

}  // namespace crane
