package main

import (
	"math"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"google.golang.org/grpc/status"
)

// latencySummary and result mirror LatencySummaryUs and LoadResult in bench/load.ts.
type latencySummary struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
	Mean int64 `json:"mean"`
}

// percentileLatency mirrors LatencyAtPercentile in bench/plot.ts.
type percentileLatency struct {
	Percentile float64 `json:"percentile"`
	Us         int64   `json:"us"`
}

// reportedPercentiles is bench/load.ts's reportedPercentiles: the percentiles latencyPercentilesUs
// lists, dense in the tail so a plot on a log scale of 1/(1-p) has points in every decade.
var reportedPercentiles = []float64{0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100}

type result struct {
	Client           string           `json:"client"`
	Op               string           `json:"op"`
	Consistency      string           `json:"consistency"`
	TxnOps           int              `json:"txnOps"`
	Conns            int              `json:"conns"`
	Clients          int              `json:"clients"`
	Requests         int              `json:"requests"`
	Errors           map[string]int64 `json:"errors"`
	ErrorCount       int64            `json:"errorCount"`
	ElapsedMs        int64            `json:"elapsedMs"`
	ThroughputPerSec int64            `json:"throughputPerSec"`
	LatencyUs        latencySummary   `json:"latencyUs"`
	// LatencyPercentilesUs has one entry per reportedPercentiles, in that order.
	LatencyPercentilesUs []percentileLatency `json:"latencyPercentilesUs"`
	RatePerSec           int                 `json:"ratePerSec"`
	ClientCPUMs          int64               `json:"clientCpuMs"`
	LastRevision         int64               `json:"lastRevision"`
}

func summarise(o options, tallies []workerTally, errors *errorCounts, elapsed, cpu time.Duration) result {
	var latencies []int64
	var lastRevision int64
	for _, tally := range tallies {
		latencies = append(latencies, tally.latenciesUs...)
		if tally.lastRevision > lastRevision {
			lastRevision = tally.lastRevision
		}
	}
	kinds, errorCount := errors.snapshot()
	// summariseLatencies sorts the samples, which latencyPercentiles needs.
	summary := summariseLatencies(latencies)
	var throughput int64
	if elapsed > 0 {
		throughput = int64(math.Round(float64(len(latencies)) / elapsed.Seconds()))
	}
	return result{
		Client:               "go-clientv3",
		Op:                   o.op,
		Consistency:          o.consistency,
		TxnOps:               o.txnOps,
		Conns:                o.conns,
		Clients:              o.clients,
		Requests:             len(latencies),
		Errors:               kinds,
		ErrorCount:           errorCount,
		ElapsedMs:            elapsed.Milliseconds(),
		ThroughputPerSec:     throughput,
		LatencyUs:            summary,
		LatencyPercentilesUs: latencyPercentiles(latencies),
		RatePerSec:           o.rate,
		ClientCPUMs:          cpu.Milliseconds(),
		LastRevision:         lastRevision,
	}
}

// summariseLatencies sorts the samples in place; a run holds at most a few million, so an exact
// sorted slice is cheap enough and needs no histogram library.
func summariseLatencies(latenciesUs []int64) latencySummary {
	if len(latenciesUs) == 0 {
		return latencySummary{}
	}
	sort.Slice(latenciesUs, func(i, j int) bool { return latenciesUs[i] < latenciesUs[j] })
	var sum float64
	for _, latency := range latenciesUs {
		sum += float64(latency)
	}
	return latencySummary{
		P50:  percentile(latenciesUs, 50),
		P90:  percentile(latenciesUs, 90),
		P99:  percentile(latenciesUs, 99),
		P999: percentile(latenciesUs, 99.9),
		Max:  latenciesUs[len(latenciesUs)-1],
		Mean: int64(math.Round(sum / float64(len(latenciesUs)))),
	}
}

// latencyPercentiles is the latency at each of reportedPercentiles of sorted samples (zeros when
// there are none).
func latencyPercentiles(sortedUs []int64) []percentileLatency {
	points := make([]percentileLatency, len(reportedPercentiles))
	for i, p := range reportedPercentiles {
		points[i].Percentile = p
		if len(sortedUs) > 0 {
			points[i].Us = percentile(sortedUs, p)
		}
	}
	return points
}

// percentile is the nearest-rank percentile of sorted samples: the smallest value with at least
// `p` percent of the samples at or below it, as an HDR histogram reports it.
func percentile(sorted []int64, p float64) int64 {
	// The epsilon keeps float error (99.9% of 1000 is 999.0000000000001) from skipping a rank.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// errorCounts counts errors by message, keeping at most `kindsMax` distinct messages.
type errorCounts struct {
	mu       sync.Mutex
	kindsMax int
	counts   map[string]int64
	total    int64
}

func newErrorCounts(kindsMax int) *errorCounts {
	return &errorCounts{kindsMax: kindsMax, counts: map[string]int64{}}
}

func (e *errorCounts) add(err error) {
	kind := errorKind(err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total++
	if _, known := e.counts[kind]; !known && len(e.counts) >= e.kindsMax {
		kind = "other"
	}
	e.counts[kind]++
}

func (e *errorCounts) snapshot() (map[string]int64, int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	copied := make(map[string]int64, len(e.counts))
	for kind, count := range e.counts {
		copied[kind] = count
	}
	return copied, e.total
}

// errorKind names an error the way bench/load.ts does ("UNAVAILABLE: details"), so error tables
// from both clients line up.
func errorKind(err error) string {
	text := err.Error()
	if s, ok := status.FromError(err); ok {
		text = upperSnake(s.Code().String()) + ": " + s.Message()
	}
	if len(text) > 120 {
		text = text[:120]
	}
	return text
}

// upperSnake turns gRPC's Go code names ("DeadlineExceeded") into the wire names Node prints
// ("DEADLINE_EXCEEDED").
func upperSnake(name string) string {
	var out strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			out.WriteByte('_')
		}
		out.WriteRune(unicode.ToUpper(r))
	}
	return out.String()
}

// keySource draws keys as bench/load.ts does: a decimal index left-padded with zeros to
// --key-size, keeping the last --key-size digits.
type keySource struct {
	run    *loadRun
	random *rand.Rand
}

func newKeySource(run *loadRun, seed uint64) *keySource {
	return &keySource{run: run, random: rand.New(rand.NewSource(time.Now().UnixNano() + int64(seed)))}
}

// next draws `count` keys: a random or the next sequential start index and the indexes after it.
func (k *keySource) next(count int) []string {
	keySpace := int64(k.run.o.keySpace)
	var start int64
	if k.run.o.sequentialKeys {
		start = atomic.AddInt64(&k.run.sequentialNext, int64(count)) - int64(count)
	} else {
		start = k.random.Int63n(keySpace)
	}
	return consecutiveKeys(start, count, keySpace, k.run.o.keySize)
}

// consecutiveKeys is the keys of indexes start, start+1, ... wrapping at keySpace; they are
// distinct while count <= keySpace and no index is truncated by keySize.
func consecutiveKeys(start int64, count int, keySpace int64, keySize int) []string {
	keys := make([]string, count)
	for i := range keys {
		keys[i] = formatKey((start+int64(i))%keySpace, keySize)
	}
	return keys
}

func formatKey(index int64, size int) string {
	digits := strconv.FormatInt(index, 10)
	if len(digits) >= size {
		return digits[len(digits)-size:]
	}
	return strings.Repeat("0", size-len(digits)) + digits
}
