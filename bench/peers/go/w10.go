package main

// W10 blocking handoff, Go peer: with GOMAXPROCS(1), one goroutine sits in a 100 ms blocking
// system call while n goroutines each call runtime.Gosched() 1,000 times. The sleeper uses
// the nanosleep system call through package syscall, which enters Go's syscall state
// (entersyscall), so sysmon can retake its P and hand it to another thread; time.Sleep
// would only park the goroutine and measure nothing. wall_ms runs from the first spawn until
// all n+1 goroutines have finished.

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

const (
	w10BlockFor = 100 * time.Millisecond
	w10Yields   = 1000
)

func w10(procs, n int) {
	var wg sync.WaitGroup
	wg.Add(n + 1)
	start := time.Now()
	go func() {
		defer wg.Done()
		ts := syscall.NsecToTimespec(int64(w10BlockFor))
		// Go's runtime signals threads (preemption, profiling): EINTR leaves the rest in ts.
		for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
		}
	}()
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			for j := 0; j < w10Yields; j++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	emit("W10", procs, "wall_ms", float64(time.Since(start).Nanoseconds())/1e6, n)
}
