// grpcpeer is a gRPC interop peer (server and client) built on grpc-go
// 1.33, for testing p2p-grpc against grpc-go. See README.md.
//
//	grpcpeer server --port=N [--keepalive_min_time_ms=M] [--permit_without_stream=BOOL] [--keepalive_time_ms=T]
//	grpcpeer client --server_host=HOST --server_port=N --test_case=CASE|all [--server_host_override=NAME]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/keepalive"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  grpcpeer server --port=N [--use_tls --tls_cert_file=PEM --tls_key_file=PEM]
                  [--keepalive_min_time_ms=M] [--permit_without_stream=true|false]
                  [--keepalive_time_ms=T] [--keepalive_timeout_ms=T]
                  [--honor_response_compression=true|false] [--exit_on_stdin_eof=true|false]
  grpcpeer client --server_host=HOST --server_port=N --test_case=CASE|all
                  [--server_host_override=NAME] [--use_tls --ca_file=PEM]
cases: %s
`, strings.Join(allCases, ", "))
}

func main() {
	setupLogging()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		os.Exit(serverMain(os.Args[2:]))
	case "client":
		os.Exit(clientMain(os.Args[2:]))
	case "-h", "--help", "help":
		usage()
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "grpcpeer: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

// setupLogging sends grpc-go's warnings and errors to stderr. The
// transport's messages (among them "Got too many pings from the client",
// logged when it sends GOAWAY too_many_pings) are only logged at verbosity 2
// (internal/transport: logLevel = 2), so the verbosity is 2. Info messages
// are dropped unless GRPC_GO_LOG_SEVERITY_LEVEL=info. grpclog writes each
// message to its own writer and to those of every lower severity, so only
// the lowest wanted severity gets os.Stderr (else lines come out 2 or 3
// times).
func setupLogging() {
	info, warning := io.Writer(ioutil.Discard), io.Writer(os.Stderr)
	if strings.EqualFold(os.Getenv("GRPC_GO_LOG_SEVERITY_LEVEL"), "info") {
		info, warning = os.Stderr, ioutil.Discard
	}
	verbosity := 2
	if v, err := strconv.Atoi(os.Getenv("GRPC_GO_LOG_VERBOSITY_LEVEL")); err == nil && v > verbosity {
		verbosity = v
	}
	grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(info, warning, ioutil.Discard, verbosity))
}

// optionalInt is an integer flag that knows whether it was given.
type optionalInt struct {
	set   bool
	value int64
}

func (o *optionalInt) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatInt(o.value, 10)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	o.set, o.value = true, v
	return nil
}

// optionalBool is a boolean flag that knows whether it was given.
type optionalBool struct {
	set   bool
	value bool
}

func (o *optionalBool) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatBool(o.value)
}

func (o *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	o.set, o.value = true, v
	return nil
}

func (o *optionalBool) IsBoolFlag() bool { return true }

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func serverMain(args []string) int {
	fs := flag.NewFlagSet("grpcpeer server", flag.ContinueOnError)
	port := fs.Int("port", -1, "port to listen on, on 127.0.0.1 (0: any free port)")
	useTLS := fs.Bool("use_tls", false, "serve TLS with --tls_cert_file and --tls_key_file")
	certFile := fs.String("tls_cert_file", "", "PEM certificate chain (with --use_tls)")
	keyFile := fs.String("tls_key_file", "", "PEM private key (with --use_tls)")
	var minTime, kaTime, kaTimeout optionalInt
	var permit optionalBool
	fs.Var(&minTime, "keepalive_min_time_ms", "keepalive.EnforcementPolicy.MinTime in ms (default: grpc-go's, 5 min)")
	fs.Var(&permit, "permit_without_stream", "keepalive.EnforcementPolicy.PermitWithoutStream (default: grpc-go's, false)")
	fs.Var(&kaTime, "keepalive_time_ms", "keepalive.ServerParameters.Time in ms (default: grpc-go's, 2 h; at least 1 s)")
	fs.Var(&kaTimeout, "keepalive_timeout_ms", "keepalive.ServerParameters.Timeout in ms (default: grpc-go's, 20 s)")
	honor := fs.Bool("honor_response_compression", true,
		"compress responses message by message as requests ask (sets a legacy RPCCompressor: every response has grpc-encoding: gzip); false: grpc-go's default")
	stdinEOF := fs.Bool("exit_on_stdin_eof", true, "exit 0 when stdin reaches end of file")
	fs.Usage = usage
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "grpcpeer server: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "grpcpeer server: --port=N is required (0..65535)")
		return 2
	}
	var opts []grpc.ServerOption
	if *useTLS {
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "grpcpeer server: %v\n", err)
			return 2
		}
		opts = append(opts, grpc.Creds(creds))
	}
	if minTime.set || permit.set {
		// Unset fields keep grpc-go's defaults (MinTime 0 means 5 min).
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             ms(minTime.value),
			PermitWithoutStream: permit.value,
		}))
	}
	if kaTime.set || kaTimeout.set {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    ms(kaTime.value),
			Timeout: ms(kaTimeout.value),
		}))
	}
	if *honor {
		opts = append(opts, grpc.RPCCompressor(serverCompressor{}))
	}

	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcpeer server: %v\n", err)
		return 1
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(&testServiceDesc, &testServer{honorCompression: *honor})

	if *stdinEOF {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			os.Exit(0)
		}()
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		os.Exit(0)
	}()

	fmt.Fprintf(os.Stdout, "listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	_ = os.Stdout.Sync()
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "grpcpeer server: %v\n", err)
		return 1
	}
	return 0
}

func clientMain(args []string) int {
	fs := flag.NewFlagSet("grpcpeer client", flag.ContinueOnError)
	host := fs.String("server_host", "127.0.0.1", "server host")
	port := fs.Int("server_port", 0, "server port")
	override := fs.String("server_host_override", "", "the :authority to claim (default: host:port)")
	testCase := fs.String("test_case", "", "a case, or all")
	useTLS := fs.Bool("use_tls", false, "TLS, trusting --ca_file, checking --server_host_override")
	caFile := fs.String("ca_file", "", "PEM CA certificates to trust (with --use_tls)")
	fs.Usage = usage
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "grpcpeer client: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *port <= 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "grpcpeer client: --server_port=N is required")
		return 2
	}
	var names []string
	switch *testCase {
	case "":
		fmt.Fprintln(os.Stderr, "grpcpeer client: --test_case=CASE|all is required")
		return 2
	case "all":
		names = allCases
	default:
		for _, name := range strings.Split(*testCase, ",") {
			if !isCase(name) {
				fmt.Fprintf(os.Stderr, "grpcpeer client: unknown test case %q (cases: %s)\n", name, strings.Join(allCases, ", "))
				return 2
			}
			names = append(names, name)
		}
	}

	target := net.JoinHostPort(*host, strconv.Itoa(*port))
	dialOpts := []grpc.DialOption{grpc.WithBlock()}
	if *useTLS {
		// The override is the name checked in the certificate (and the
		// authority grpc-go sends with TLS).
		creds, err := credentials.NewClientTLSFromFile(*caFile, *override)
		if err != nil {
			fmt.Fprintf(os.Stderr, "grpcpeer client: %v\n", err)
			return 2
		}
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(creds))
	} else {
		dialOpts = append(dialOpts, grpc.WithInsecure())
		if *override != "" {
			dialOpts = append(dialOpts, grpc.WithAuthority(*override))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cc, err := grpc.DialContext(ctx, target, dialOpts...)
	cancel()
	if err != nil {
		for _, name := range names {
			fmt.Printf("%s: FAILED: cannot connect to %s: %v\n", name, target, err)
		}
		fmt.Printf("0 passed, %d failed, 0 unsupported\n", len(names))
		return 1
	}
	defer cc.Close()
	if runCases(&interopClient{cc: cc}, names) {
		return 0
	}
	return 1
}

func isCase(name string) bool {
	for _, c := range allCases {
		if c == name {
			return true
		}
	}
	return false
}
