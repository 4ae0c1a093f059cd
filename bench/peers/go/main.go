// The Go peer of bench/compare: W1 (spawn-join), W2 (skynet), W3 (ping-pong), W4 (channel
// throughput), W5 (parked density), W6 (yield), W7 (select), W8 (timers) and W10 (blocking
// handoff, w10.go), printing the JSON lines of shared/BENCH.md with impl "go"; and W9's echo
// server (w9.go), which the load client measures. Standard library only.
//
//	go build -o bench_go . && ./bench_go -workload W1 -procs 2 -n 1000000
//	./bench_go -workload W4 -case 4p4c
//	./bench_go -workload W10 -procs 1
//	./bench_go -workload W9 -port 0     # serves until SIGTERM
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func emit(workload string, procs int, metric string, value float64, n int) {
	emitCase(workload, "", procs, metric, value, n)
}

// emitCase prints one line with a "case" key (omitted when c is empty, the plain form).
func emitCase(workload, c string, procs int, metric string, value float64, n int) {
	// A struct keeps the key order of the C++ programs: workload, impl, case, procs, metric,
	// value, n.
	line, _ := json.Marshal(struct {
		Workload string  `json:"workload"`
		Impl     string  `json:"impl"`
		Case     string  `json:"case,omitempty"`
		Procs    int     `json:"procs"`
		Metric   string  `json:"metric"`
		Value    float64 `json:"value"`
		N        int     `json:"n"`
	}{workload, "go", c, procs, metric, value, n})
	fmt.Println(string(line))
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
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

// W2 skynet: a 10-ary tree of goroutines, n leaves (a power of 10); every node makes one
// unbuffered channel, starts its 10 children and sums the 10 values they send back; a leaf
// sends its ordinal. Timed from the root's spawn until its sum arrives.
func skynet(c chan<- int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64)
	size /= 10
	for i := int64(0); i < 10; i++ {
		go skynet(rc, num+i*size, size)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func w2(procs, n int) {
	if !isPowerOf10(n) {
		fail("W2: -n must be a power of 10, got %d", n)
	}
	c := make(chan int64)
	start := time.Now()
	go skynet(c, 0, int64(n))
	sum := <-c
	elapsed := time.Since(start)
	if want := int64(n) * int64(n-1) / 2; sum != want {
		fail("W2: wrong sum %d, want %d", sum, want)
	}
	emit("W2", procs, "wall_ms", float64(elapsed.Nanoseconds())/1e6, n)
	emit("W2", procs, "peak_rss_mib", peakRSSMiB(), n)
}

func isPowerOf10(n int) bool {
	for n > 1 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// W3 ping-pong: the main goroutine sends a counter on one unbuffered channel, a second
// goroutine sends it back incremented on another; n round trips.
func w3(procs, n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	v := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	elapsed := time.Since(start)
	close(ping)
	if v != n {
		fail("W3: counter %d after %d round trips", v, n)
	}
	emit("W3", procs, "ns_per_roundtrip", float64(elapsed.Nanoseconds())/float64(n), n)
}

// W4 channel throughput: p producers send the ints 0..n-1 (each a contiguous share) into one
// channel of capacity 1024 that p consumers drain; closed once every producer is done. Timed
// from the first spawn until every consumer has seen the close. Case 1p1c or 4p4c.
func w4(procs, n int, c string) {
	p := map[string]int{"1p1c": 1, "4p4c": 4}[c]
	if p == 0 {
		fail("W4: -case is 1p1c or 4p4c, got %q", c)
	}
	ch := make(chan int64, 1024)
	var producers, consumers sync.WaitGroup
	counts, sums := make([]int64, p), make([]int64, p)
	producers.Add(p)
	consumers.Add(p)
	start := time.Now()
	for k := 0; k < p; k++ {
		go func(k int) {
			defer consumers.Done()
			var count, sum int64
			for v := range ch {
				count++
				sum += v
			}
			counts[k], sums[k] = count, sum
		}(k)
	}
	for k := 0; k < p; k++ {
		lo, hi := int64(n*k/p), int64(n*(k+1)/p)
		go func() {
			defer producers.Done()
			for v := lo; v < hi; v++ {
				ch <- v
			}
		}()
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	elapsed := time.Since(start)
	var count, sum int64
	for k := 0; k < p; k++ {
		count += counts[k]
		sum += sums[k]
	}
	if want := int64(n) * int64(n-1) / 2; count != int64(n) || sum != want {
		fail("W4: received %d values summing to %d, want %d summing to %d", count, sum, n, want)
	}
	emitCase("W4", c, procs, "mmsgs_per_s", float64(n)/elapsed.Seconds()/1e6, n)
}

// W7 select: two producers each send their half of the ints 0..n-1 on their own channel of
// capacity 1024; the main goroutine runs a 2-way select loop for n receives.
func w7(procs, n int) {
	a, b := make(chan int64, 1024), make(chan int64, 1024)
	produce := func(ch chan<- int64, lo, hi int64) {
		for v := lo; v < hi; v++ {
			ch <- v
		}
	}
	start := time.Now()
	go produce(a, 0, int64(n/2))
	go produce(b, int64(n/2), int64(n))
	var sum, fromA int64
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			sum += v
			fromA++
		case v := <-b:
			sum += v
		}
	}
	elapsed := time.Since(start)
	if want := int64(n) * int64(n-1) / 2; sum != want || fromA != int64(n/2) {
		fail("W7: sum %d (want %d), %d from the first channel (want %d)", sum, want, fromA, n/2)
	}
	emit("W7", procs, "ns_per_op", float64(elapsed.Nanoseconds())/float64(n), n)
}

// The requested sleep of W8's task i, 1..100 ms: splitmix64(i) % 100 + 1, the same sequence
// in every impl (bench_util.hpp's bench::w8_sleep_ms).
func w8SleepMs(i uint64) int64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int64(z%100) + 1
}

// Nearest-rank percentile of sorted values (bench_util.hpp's bench::percentile).
func percentile(sorted []int64, p float64) int64 {
	k := int(float64(len(sorted))*p/100+0.999999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(sorted) {
		k = len(sorted) - 1
	}
	return sorted[k]
}

// W8 timers: n goroutines each sleep once for 1..100 ms; lateness = actual - requested sleep,
// measured by the goroutine around its time.Sleep. wall_ms runs from the first spawn to the
// last wake.
func w8(procs, n int) {
	late, woke := make([]int64, n), make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			d := time.Duration(w8SleepMs(uint64(i))) * time.Millisecond
			before := time.Now()
			time.Sleep(d)
			after := time.Now()
			late[i] = int64(after.Sub(before) - d)
			woke[i] = int64(after.Sub(start))
		}(i)
	}
	wg.Wait()
	var last int64
	for _, w := range woke {
		last = max(last, w)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	if late[0] < 0 {
		fail("W8: a sleep returned %d ns early", -late[0])
	}
	emit("W8", procs, "wall_ms", float64(last)/1e6, n)
	emit("W8", procs, "p50_late_ms", float64(percentile(late, 50))/1e6, n)
	emit("W8", procs, "p99_late_ms", float64(percentile(late, 99))/1e6, n)
}

func main() {
	workload := flag.String("workload", "W1", "W1 ... W10")
	procsFlag := flag.String("procs", "all", "GOMAXPROCS: a number or all")
	n := flag.Int("n", 0, "size (0 = the BENCH.md default for the workload)")
	caseName := flag.String("case", "", "variant: W4 1p1c (default) or 4p4c")
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

	defaults := map[string]int{"W1": 1_000_000, "W2": 1_000_000, "W3": 1_000_000,
		"W4": 10_000_000, "W5": 1_000_000, "W6": 10_000_000, "W7": 5_000_000, "W8": 100_000,
		"W9": 0, "W10": 1000} // W9 serves until stopped; W10's n = yielding goroutines
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
	case "W2":
		w2(procs, size)
	case "W3":
		w3(procs, size)
	case "W4":
		if *caseName == "" {
			*caseName = "1p1c"
		}
		w4(procs, size, *caseName)
	case "W7":
		w7(procs, size)
	case "W8":
		w8(procs, size)
	case "W5":
		w5(procs, size)
	case "W6":
		w6(procs, size)
	case "W9":
		w9()
	case "W10":
		w10(procs, size)
	}
}
