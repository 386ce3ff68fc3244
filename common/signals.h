// SIGTERM/SIGINT handling without async-signal-safety traps: the signals are blocked in every thread
// and one thread waits for them with sigwait and runs an ordinary callback.
#pragma once

#include <functional>
#include <thread>

namespace psd3d {

// Call first in main(), before any thread starts, so every thread inherits the blocked mask.
void BlockTerminationSignals();
// Starts a detached thread that calls on_signal(signo) for each SIGTERM or SIGINT.
void OnTerminationSignal(std::function<void(int)> on_signal);

}  // namespace psd3d
