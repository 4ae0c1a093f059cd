// The Go peer of bench/compare: W1 (spawn-join), W5 (parked density) and W6 (yield), printing
// the JSON lines of shared/BENCH.md with impl "go". Standard library only.
//
//	go build -o bench_go . && ./bench_go -workload W1 -procs 2 -n 1000000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func emit(workload string, procs int, metric string, value float64, n int) {
	// A struct keeps the key order of the contract: workload, impl, procs, metric, value, n.
	line, _ := json.Marshal(struct {
		Workload string  `json:"workload"`
		Impl     string  `json:"impl"`
		Procs    int     `json:"procs"`
		Metric   string  `json:"metric"`
		Value    float64 `json:"value"`
		N        int     `json:"n"`
	}{workload, "go", procs, metric, value, n})
	fmt.Println(string(line))
}

// Peak RSS in MiB: VmHWM from /proc/self/status. Not syscall.Getrusage's Maxrss: Linux
// carries that across exec, so a run started by a bigger parent (the Python of bench/compare)
// reports at least the parent's size. VmHWM belongs to the address space, which exec replaces.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kib, _ := strconv.ParseFloat(f[1], 64)
			return kib / 1024
		}
	}
	return 0
}

// Current RSS in bytes (second field of /proc/self/statm, in pages).
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// W1: the main goroutine spawns n goroutines that each do one atomic add; timed from the first
// spawn until wg.Wait returns.
func w1(procs, n int) {
	var wg sync.WaitGroup
	var sum int64
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&sum, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if atomic.LoadInt64(&sum) != int64(n) {
		fmt.Fprintln(os.Stderr, "W1: wrong sum", sum)
		os.Exit(1)
	}
	emit("W1", procs, "ns_per_task", float64(elapsed.Nanoseconds())/float64(n), n)
	emit("W1", procs, "peak_rss_mib", peakRSSMiB(), n)
}

// W6: one goroutine calls runtime.Gosched n times while a second one, also yielding in a loop,
// is runnable. The measured one starts its clock only once the other is running, so every
// timed yield has a partner.
func w6(procs, n int) {
	var otherRunning, stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		otherRunning.Store(true)
		for !stop.Load() {
			runtime.Gosched()
		}
	}()
	var elapsed time.Duration
	go func() {
		defer wg.Done()
		for !otherRunning.Load() {
			runtime.Gosched()
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
		elapsed = time.Since(start)
		stop.Store(true)
	}()
	wg.Wait()
	emit("W6", procs, "ns_per_yield", float64(elapsed.Nanoseconds())/float64(n), n)
}

// W5: n goroutines each block receiving from one shared channel. Memory is the RSS growth
// from before the spawns to when all are parked, per goroutine; wake_ms is close(ch) until
// every goroutine has exited.
func w5(procs, n int) {
	runtime.GC() // start from a collected heap so the "before" reading is not inflated
	before := currentRSS()
	ch := make(chan struct{})
	var parked atomic.Int64
	var exited sync.WaitGroup
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Add(1)
			<-ch
			exited.Done()
		}()
	}
	// The counter says every goroutine reached the receive; the sleep lets the last few
	// actually block before RSS is read.
	for parked.Load() != int64(n) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	after := currentRSS()
	start := time.Now()
	close(ch)
	exited.Wait()
	wake := time.Since(start)
	emit("W5", procs, "bytes_per_parked", float64(after-before)/float64(n), n)
	emit("W5", procs, "wake_ms", float64(wake.Nanoseconds())/1e6, n)
}

func main() {
	workload := flag.String("workload", "W1", "W1, W5 or W6")
	procsFlag := flag.String("procs", "all", "GOMAXPROCS: a number or all")
	n := flag.Int("n", 0, "size (0 = the BENCH.md default for the workload)")
	flag.Parse()

	procs := runtime.NumCPU()
	if *procsFlag != "all" && *procsFlag != "0" {
		p, err := strconv.Atoi(*procsFlag)
		if err != nil || p < 1 {
			fmt.Fprintln(os.Stderr, "bad -procs", *procsFlag)
			os.Exit(2)
		}
		procs = p
	}
	runtime.GOMAXPROCS(procs)

	defaults := map[string]int{"W1": 1_000_000, "W5": 1_000_000, "W6": 10_000_000}
	size, ok := defaults[*workload]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown -workload", *workload)
		os.Exit(2)
	}
	if *n > 0 {
		size = *n
	}
	switch *workload {
	case "W1":
		w1(procs, size)
	case "W5":
		w5(procs, size)
	case "W6":
		w6(procs, size)
	}
}
