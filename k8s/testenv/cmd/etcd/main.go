// Command etcd runs a single-member etcd server for tests, embedded from
// go.etcd.io/etcd/server/v3 (the version Kubernetes itself uses), on loopback only.
//
//	etcd --data-dir DIR --client-port 23790 --peer-port 23800
//
// It prints "etcd ready <client URL>" on stdout once the member serves clients and
// stops cleanly on SIGTERM or SIGINT. Durability is traded for speed (no fsync): the
// data directory is meant to be thrown away with the test environment.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "data directory (required)")
	clientPort := flag.Int("client-port", 2379, "client port on 127.0.0.1")
	peerPort := flag.Int("peer-port", 2380, "peer port on 127.0.0.1")
	name := flag.String("name", "weir-testenv", "member name")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	readyTimeout := flag.Duration("ready-timeout", time.Minute, "give up if the member is not ready by then")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir is required")
		os.Exit(2)
	}

	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = *logLevel
	// NewConfig leaves this at 0 (only etcd's own flag parsing sets the 300ms default),
	// and then every request is logged as a slow "request stats" warning.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: start: %v\n", err)
		os.Exit(1)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	select {
	case <-e.Server.ReadyNotify():
		fmt.Printf("etcd ready %s\n", clientURL.String())
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		e.Close()
		os.Exit(1)
	case <-time.After(*readyTimeout):
		fmt.Fprintf(os.Stderr, "etcd: not ready after %s\n", *readyTimeout)
		e.Close()
		os.Exit(1)
	case sig := <-signals:
		fmt.Fprintf(os.Stderr, "etcd: %s before ready, stopping\n", sig)
		e.Close()
		os.Exit(1)
	}

	select {
	case sig := <-signals:
		fmt.Fprintf(os.Stderr, "etcd: %s, stopping\n", sig)
		e.Close()
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		e.Close()
		os.Exit(1)
	}
}
