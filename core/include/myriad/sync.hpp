// Go's sync package for myriad: Mutex, RWMutex, Cond, Once, Semaphore (and WaitGroup).
// Every type works from tasks (which park) and from foreign OS threads (which sleep on a
// futex), through the runtime's one wait mechanism.
#pragma once

#include "myriad/cond.hpp"
#include "myriad/mutex.hpp"
#include "myriad/once.hpp"
#include "myriad/semaphore.hpp"
#include "myriad/wait_group.hpp"
