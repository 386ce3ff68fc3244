#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

namespace psd3d {
namespace {

sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void OnTerminationSignal(std::function<void(int)> on_signal) {
  std::thread([cb = std::move(on_signal)] {
    sigset_t set = TerminationSet();
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0) cb(sig);
    }
  }).detach();
}

}  // namespace psd3d
