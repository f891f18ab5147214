// Command tsetcd-go-load is a neutral load generator for etcd's KV API built on etcd's own Go
// client (clientv3), so a comparison of etcd and tsetcd is not limited by a Node.js client that
// shares the machine's cores with the servers. It prints one JSON object on stdout with the
// same fields as bench/load.ts's LoadResult.
//
//	tsetcd-go-load --endpoints 127.0.0.1:2379 --conns 8 --clients 64 --op put --duration 5
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/pkg/logutil"
	"go.etcd.io/etcd/pkg/transport"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Upper bounds so a typo cannot start an endless or enormous load.
const (
	durationMax   = time.Hour
	clientsMax    = 100_000
	connsMax      = 1_024
	keySizeMax    = 1 << 20
	valSizeMax    = 16 << 20
	dialTimeout   = 5 * time.Second
	errorKindsMax = 32
	rateMax       = 10_000_000
)

type options struct {
	endpoints      []string
	conns          int
	clients        int
	op             string
	consistency    string
	txnOps         int
	keySize        int
	valSize        int
	keySpace       int
	sequentialKeys bool
	duration       time.Duration
	warmup         time.Duration
	total          int64
	deadline       time.Duration
	rate           int
	user           string
	cacert         string
	cert           string
	key            string
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("tsetcd-go-load", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints; connection i uses endpoint i mod n")
	fs.IntVar(&o.conns, "conns", 1, "gRPC connections (one clientv3 client each); clients are spread round-robin over them")
	fs.IntVar(&o.clients, "clients", 1, "concurrent goroutines, each with one request in flight")
	fs.StringVar(&o.op, "op", "put", "put, range, txn-put or authenticate (Auth.Authenticate as --user)")
	fs.StringVar(&o.consistency, "consistency", "l", "l (linearizable) or s (serializable), for range")
	fs.IntVar(&o.txnOps, "txn-ops", 1, "puts of distinct keys in each txn-put request")
	fs.IntVar(&o.keySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&o.valSize, "val-size", 256, "value size in bytes")
	fs.IntVar(&o.keySpace, "key-space", 10_000, "keys are drawn from [0, key-space)")
	fs.BoolVar(&o.sequentialKeys, "sequential-keys", false, "walk the key space in order instead of at random")
	duration := fs.Float64("duration", 10, "measured seconds (an upper bound when --total is given)")
	warmup := fs.Float64("warmup", 1, "seconds of unmeasured load before measuring")
	fs.Int64Var(&o.total, "total", 0, "measured requests to send (0: run for --duration)")
	deadline := fs.Float64("deadline", 10, "per-request deadline in seconds")
	fs.StringVar(&o.user, "user", "", "name:password to authenticate as, for a server with auth enabled (empty: anonymous)")
	fs.StringVar(&o.cacert, "cacert", "", "CA bundle that verifies the servers' certificates (TLS when given; endpoints may then say https://)")
	fs.StringVar(&o.cert, "cert", "", "client certificate to present, with --key")
	fs.StringVar(&o.key, "key", "", "private key of --cert")
	fs.IntVar(&o.rate, "rate", 0, "at most this many requests per second over all clients, warm-up included (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.endpoints = splitEndpoints(*endpoints)
	o.duration = seconds(*duration)
	o.warmup = seconds(*warmup)
	o.deadline = seconds(*deadline)
	return o, o.validate()
}

func splitEndpoints(text string) []string {
	var endpoints []string
	for _, endpoint := range strings.Split(text, ",") {
		if endpoint != "" {
			endpoints = append(endpoints, endpoint)
		}
	}
	return endpoints
}

func seconds(value float64) time.Duration {
	return time.Duration(value * float64(time.Second))
}

func (o options) validate() error {
	switch {
	case len(o.endpoints) == 0:
		return fmt.Errorf("expected at least one endpoint")
	case o.conns < 1 || o.conns > connsMax:
		return fmt.Errorf("--conns must be in 1..%d, saw %d", connsMax, o.conns)
	case o.clients < 1 || o.clients > clientsMax:
		return fmt.Errorf("--clients must be in 1..%d, saw %d", clientsMax, o.clients)
	case o.op != "put" && o.op != "range" && o.op != "txn-put" && o.op != "authenticate":
		return fmt.Errorf("--op must be put, range, txn-put or authenticate, saw %q", o.op)
	case o.op == "authenticate" && !strings.Contains(o.user, ":"):
		return fmt.Errorf("--op authenticate needs --user name:password, saw %q", o.user)
	case (o.cert == "") != (o.key == ""):
		return fmt.Errorf("--cert and --key go together, saw --cert %q --key %q", o.cert, o.key)
	case o.cert != "" && o.cacert == "":
		return fmt.Errorf("--cert needs --cacert to verify the servers")
	case o.consistency != "l" && o.consistency != "s":
		return fmt.Errorf("--consistency must be l or s, saw %q", o.consistency)
	case o.keySize < 1 || o.keySize > keySizeMax:
		return fmt.Errorf("--key-size must be in 1..%d, saw %d", keySizeMax, o.keySize)
	case o.valSize < 0 || o.valSize > valSizeMax:
		return fmt.Errorf("--val-size must be in 0..%d, saw %d", valSizeMax, o.valSize)
	case o.keySpace < 1:
		return fmt.Errorf("--key-space must be positive, saw %d", o.keySpace)
	case o.txnOps < 1 || o.txnOps > o.keySpace:
		return fmt.Errorf("--txn-ops must be in 1..%d (the key space), saw %d", o.keySpace, o.txnOps)
	case o.op == "txn-put" && o.txnOps > 1 && len(strconv.Itoa(o.keySpace-1)) > o.keySize:
		// Truncated keys repeat, and etcd refuses a txn that puts one key twice.
		return fmt.Errorf("--txn-ops above 1 needs every index of --key-space %d to fit in --key-size %d digits", o.keySpace, o.keySize)
	case o.duration <= 0 || o.duration > durationMax:
		return fmt.Errorf("--duration must be in (0, %v], saw %v", durationMax, o.duration)
	case o.warmup < 0:
		return fmt.Errorf("--warmup must not be negative, saw %v", o.warmup)
	case o.total < 0:
		return fmt.Errorf("--total must not be negative, saw %d", o.total)
	case o.deadline <= 0:
		return fmt.Errorf("--deadline must be positive, saw %v", o.deadline)
	case o.rate < 0 || o.rate > rateMax:
		return fmt.Errorf("--rate must be in 0..%d, saw %d", rateMax, o.rate)
	}
	return nil
}

// keysPerRequest is how many distinct keys one request writes or reads.
func (o options) keysPerRequest() int {
	if o.op == "txn-put" {
		return o.txnOps
	}
	return 1
}

func main() {
	// --serve-null ADDRESS turns the tool into the do-nothing server of null_server.go instead.
	if len(os.Args) == 3 && os.Args[1] == "--serve-null" {
		if err := serveNull(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "tsetcd-go-load: %v\n", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tsetcd-go-load: %v\n", err)
		os.Exit(2)
	}
	clients, err := connect(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tsetcd-go-load: %v\n", err)
		os.Exit(1)
	}
	result := run(o, clients)
	for _, client := range clients {
		client.Close()
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintf(os.Stderr, "tsetcd-go-load: %v\n", err)
		os.Exit(1)
	}
	if result.Requests == 0 {
		os.Exit(1)
	}
}

// connect opens one clientv3 client (one gRPC connection) per --conns, each pinned to one
// endpoint, as bench/load.ts does with its connections.
func connect(o options) ([]*clientv3.Client, error) {
	// Failed requests are counted in the report; clientv3's per-retry warnings would only add
	// stderr noise and client CPU under load.
	logConfig := logutil.DefaultZapLoggerConfig
	logConfig.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	tlsConfig, err := clientTLS(o)
	if err != nil {
		return nil, err
	}
	// For --op authenticate every request is the Authenticate call itself, so the clients log in
	// with nothing first.
	user := o.user
	if o.op == "authenticate" {
		user = ""
	}
	clients := make([]*clientv3.Client, 0, o.conns)
	for i := 0; i < o.conns; i++ {
		endpoint := o.endpoints[i%len(o.endpoints)]
		client, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{endpoint},
			DialTimeout: dialTimeout,
			// Blocking makes an unreachable endpoint fail here, within DialTimeout, not per request.
			DialOptions: []grpc.DialOption{grpc.WithBlock()},
			LogConfig:   &logConfig,
			TLS:         tlsConfig,
			Username:    userName(user),
			Password:    userPassword(user),
		})
		if err != nil {
			for _, opened := range clients {
				opened.Close()
			}
			return nil, fmt.Errorf("connecting to %s: %v", endpoint, err)
		}
		clients = append(clients, client)
	}
	return clients, nil
}

// clientTLS is the TLS configuration --cacert, --cert and --key ask for, or nil (plain
// connections) without --cacert.
func clientTLS(o options) (*tls.Config, error) {
	if o.cacert == "" {
		return nil, nil
	}
	info := transport.TLSInfo{TrustedCAFile: o.cacert, CertFile: o.cert, KeyFile: o.key}
	config, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the TLS files: %v", err)
	}
	return config, nil
}

// loadRun is the state the client goroutines share; everything else is per goroutine.
type loadRun struct {
	o              options
	value          string
	measureStart   time.Time
	measureEnd     time.Time
	issuedMeasured int64
	sequentialNext int64
	errors         *errorCounts
	// pacer is nil without --rate.
	pacer *pacer
}

// pacer paces requests at --rate over all clients, as etcd's `benchmark --rate` does: slot i is due
// at anchor + i/rate. A slot is never made up: when every client is late, the schedule restarts
// from now instead of sending the missed slots in a burst, so due times are always at least
// 1/rate apart and no window of a second holds more than --rate of them. bench/load.ts's RatePacer
// is the same schedule.
type pacer struct {
	mu     sync.Mutex
	rate   float64
	anchor time.Time
	slot   int64
}

func newPacer(rate int, start time.Time) *pacer {
	return &pacer{rate: float64(rate), anchor: start}
}

// reserve takes the next slot and returns when it is due: its schedule time, or now if that has
// passed.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	due := p.anchor.Add(time.Duration(float64(p.slot) * float64(time.Second) / p.rate))
	if due.Before(now) {
		p.anchor = now
		p.slot = 0
		due = now
	}
	p.slot++
	return due
}

// sendTime waits for the client's next paced slot and returns its time, or false when that slot
// falls after the run. Without --rate it is now. The slot's time, not the wake-up's, decides
// whether a request is measured, so a late wake-up cannot move a warm-up request into the count.
func (r *loadRun) sendTime() (time.Time, bool) {
	now := time.Now()
	if r.pacer == nil {
		return now, true
	}
	due := r.pacer.reserve(now)
	if !due.Before(r.measureEnd) {
		return due, false
	}
	time.Sleep(due.Sub(now))
	return due, true
}

type phase int

const (
	phaseStop phase = iota
	phaseWarmup
	phaseMeasure
)

// admit says whether a client may issue another request and whether it would be measured.
func (r *loadRun) admit(now time.Time) phase {
	if !now.Before(r.measureEnd) {
		return phaseStop
	}
	if now.Before(r.measureStart) {
		return phaseWarmup
	}
	if r.o.total > 0 && atomic.AddInt64(&r.issuedMeasured, 1) > r.o.total {
		return phaseStop
	}
	return phaseMeasure
}

// workerTally is what one goroutine measured; tallies are merged after the run.
type workerTally struct {
	latenciesUs  []int64
	lastRevision int64
}

func run(o options, clients []*clientv3.Client) result {
	r := &loadRun{o: o, value: strings.Repeat("v", o.valSize), errors: newErrorCounts(errorKindsMax)}
	runStart := time.Now()
	if o.rate > 0 {
		r.pacer = newPacer(o.rate, runStart)
	}
	r.measureStart = runStart.Add(o.warmup)
	// In --total mode the duration still bounds the run, so a dead server cannot hang it.
	r.measureEnd = r.measureStart.Add(o.duration)
	tallies := make([]workerTally, o.clients)
	var wait sync.WaitGroup
	for i := 0; i < o.clients; i++ {
		wait.Add(1)
		go func(i int) {
			defer wait.Done()
			clientLoop(r, clients[i%len(clients)], uint64(i), &tallies[i])
		}(i)
	}
	time.Sleep(time.Until(r.measureStart))
	cpuStart := cpuTime()
	started := time.Now()
	wait.Wait()
	return summarise(o, tallies, r.errors, time.Since(started), cpuTime()-cpuStart)
}

func clientLoop(r *loadRun, client *clientv3.Client, seed uint64, tally *workerTally) {
	source := newKeySource(r, seed)
	for {
		at, ok := r.sendTime()
		if !ok {
			return
		}
		p := r.admit(at)
		if p == phaseStop {
			return
		}
		keys := source.next(r.o.keysPerRequest())
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), r.o.deadline)
		revision, err := request(ctx, r.o, client, keys, r.value)
		cancel()
		if p != phaseMeasure {
			continue
		}
		if err != nil {
			r.errors.add(err)
			continue
		}
		elapsedUs := time.Since(start).Microseconds()
		if elapsedUs < 1 {
			elapsedUs = 1
		}
		tally.latenciesUs = append(tally.latenciesUs, elapsedUs)
		if revision > tally.lastRevision {
			tally.lastRevision = revision
		}
	}
}

// request sends one request of --op and returns the revision in its response header.
func request(ctx context.Context, o options, client *clientv3.Client, keys []string, value string) (int64, error) {
	switch o.op {
	case "put":
		response, err := client.Put(ctx, keys[0], value)
		if err != nil {
			return 0, err
		}
		return response.Header.Revision, nil
	case "authenticate":
		// clientv3 keeps its Authenticate call private; the generated stub on the same connection is it.
		request := &pb.AuthenticateRequest{Name: userName(o.user), Password: userPassword(o.user)}
		response, err := pb.NewAuthClient(client.ActiveConnection()).Authenticate(ctx, request)
		if err != nil {
			return 0, err
		}
		return response.Header.Revision, nil
	case "txn-put":
		// As etcd's `benchmark txn-put`: no compares, every put in the success branch.
		puts := make([]clientv3.Op, len(keys))
		for i, key := range keys {
			puts[i] = clientv3.OpPut(key, value)
		}
		response, err := client.Txn(ctx).Then(puts...).Commit()
		if err != nil {
			return 0, err
		}
		return response.Header.Revision, nil
	}
	var opts []clientv3.OpOption
	if o.consistency == "s" {
		opts = append(opts, clientv3.WithSerializable())
	}
	response, err := client.Get(ctx, keys[0], opts...)
	if err != nil {
		return 0, err
	}
	return response.Header.Revision, nil
}

// cpuTime is this process's user plus system CPU so far.
func cpuTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// userName is the name part of --user name:password ("" when --user is empty).
func userName(user string) string {
	if i := strings.Index(user, ":"); i >= 0 {
		return user[:i]
	}
	return user
}

// userPassword is the password part of --user name:password.
func userPassword(user string) string {
	if i := strings.Index(user, ":"); i >= 0 {
		return user[i+1:]
	}
	return ""
}
