package main

// W9's Go peer: a TCP echo server on the net package, one goroutine per connection, driven
// by the same load client as ours (examples/load_client). It prints no JSON line itself: the
// client measures and reports.
//
//	./bench_go -workload W9 -procs 2 -host 127.0.0.1 -port 0   # prints "listening on PORT"

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	w9Host     = flag.String("host", "127.0.0.1", "W9: address to listen on")
	w9Port     = flag.Int("port", 0, "W9: port to listen on (0: any free one, printed)")
	w9MaxConns = flag.Int64("max-conns", 0, "W9: exit after this many connections closed (0: never)")
)

// w9 serves until SIGINT/SIGTERM, or until -max-conns connections have been closed.
func w9() {
	ln, err := net.Listen("tcp", net.JoinHostPort(*w9Host, strconv.Itoa(*w9Port)))
	if err != nil {
		fail("W9: %v", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	allClosed := make(chan struct{})
	var closed atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// EMFILE and the like: back off and retry, as net/http's server does.
				time.Sleep(5 * time.Millisecond)
				continue
			}
			go func() {
				echo(c)
				if closed.Add(1) == *w9MaxConns {
					close(allClosed)
				}
			}()
		}
	}()
	// The bench driver waits for this line before it starts the client; os.Stdout is
	// unbuffered in Go, so it is out before the first Accept can matter.
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	select {
	case <-stop:
	case <-allClosed:
	}
	ln.Close()
}

// echo writes back whatever it reads until the peer closes or an error. The buffer is
// larger than W9's 64-byte messages so one read takes whatever has arrived (our server
// uses the same size).
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
