// Command s3server runs rclone's fork of gofakes3 (an S3 implementation with an in-memory backend and
// AWS Signature V4 verification) on a loopback port, for the serving image's fetcher tests.
//
// It prints "listening on <host:port>" once the socket is bound, so tests can ask for port 0 and read
// the port back instead of racing for a free one.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	accessKey := flag.String("access-key", "", "access key id accepted by Signature V4 (empty: no auth)")
	secretKey := flag.String("secret-key", "", "secret access key of -access-key")
	buckets := flag.String("buckets", "", "comma-separated buckets to create at start")
	flag.Parse()

	backend := s3mem.New()
	for _, b := range strings.Split(*buckets, ",") {
		if b == "" {
			continue
		}
		if err := backend.CreateBucket(context.Background(), b); err != nil {
			log.Fatalf("create bucket %q: %v", b, err)
		}
	}
	opts := []gofakes3.Option{gofakes3.WithAutoBucket(false)}
	if *accessKey != "" {
		opts = append(opts, gofakes3.WithV4Auth(map[string]string{*accessKey: *secretKey}))
	}
	faker := gofakes3.New(backend, opts...)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr().String())
	if err := http.Serve(ln, faker.Server()); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
