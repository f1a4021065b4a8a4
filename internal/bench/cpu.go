package bench

import (
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// ProcCPU is the CPU one process used during a load: the share of one core,
// and that share over the load's rate, the CPU time each request cost it;
// and the read and write system calls it made per request (syscr and syscw
// of /proc/<pid>/io), which show how well it batched its network I/O.
type ProcCPU struct {
	Process       string  `json:"process"`
	Cores         float64 `json:"cores"`
	USPerReq      float64 `json:"us_per_request"`
	IOCallsPerReq float64 `json:"io_syscalls_per_request"`
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuMeter measures the CPU of the load generator (this process) and of
// the processes under load over one span, or over several: begin and
// pause bracket each, end closes the last and reports them all.
type cpuMeter struct {
	names   []string
	pids    []int
	before  []time.Duration // at the last begin
	used    []time.Duration // over the closed spans
	calls0  []int64         // read and write system calls at the last begin
	calls   []int64         // over the closed spans
	start   time.Time
	elapsed time.Duration // of the closed spans
	running bool
	failed  bool // /proc could not be read
	// profile, if set (-pprof), starts CPU profiles of the processes for
	// a span of d and returns a function that waits for them.
	profile func(d time.Duration) (wait func())
}

func newCPUMeter(ps ...*proc) *cpuMeter {
	m := &cpuMeter{names: []string{"load generator (inkbench)"}, pids: []int{os.Getpid()}}
	for _, p := range ps {
		m.names = append(m.names, p.Name)
		m.pids = append(m.pids, p.Pid())
	}
	m.before = make([]time.Duration, len(m.pids))
	m.used = make([]time.Duration, len(m.pids))
	m.calls0 = make([]int64, len(m.pids))
	m.calls = make([]int64, len(m.pids))
	return m
}

// begin opens a span.
func (m *cpuMeter) begin() {
	for i, pid := range m.pids {
		t, err := cpuTime(pid)
		n, ioErr := ioCalls(pid)
		m.failed = m.failed || err != nil || ioErr != nil
		m.before[i], m.calls0[i] = t, n
	}
	m.start, m.running = time.Now(), true
}

// profileSpan starts the CPU profiles of a span of d, if m profiles, and
// returns a function that waits for them.
func (m *cpuMeter) profileSpan(d time.Duration) (wait func()) {
	if m == nil || m.profile == nil {
		return func() {}
	}
	return m.profile(d)
}

// pause closes the open span.
func (m *cpuMeter) pause() {
	if !m.running {
		return
	}
	m.elapsed += time.Since(m.start)
	for i, pid := range m.pids {
		t, err := cpuTime(pid)
		n, ioErr := ioCalls(pid)
		m.failed = m.failed || err != nil || ioErr != nil
		m.used[i] += t - m.before[i]
		m.calls[i] += n - m.calls0[i]
	}
	m.running = false
}

// end closes the open span, if any, and reports each process's CPU over
// the spans; rate is the load's requests per second over them. Without
// /proc it returns nothing.
func (m *cpuMeter) end(rate float64) []ProcCPU {
	m.pause()
	if m.failed || m.elapsed <= 0 {
		return nil
	}
	out := make([]ProcCPU, len(m.pids))
	for i := range m.pids {
		out[i] = ProcCPU{Process: m.names[i], Cores: float64(m.used[i]) / float64(m.elapsed)}
		if rate > 0 {
			out[i].USPerReq = out[i].Cores / rate * 1e6
			out[i].IOCallsPerReq = float64(m.calls[i]) / m.elapsed.Seconds() / rate
		}
	}
	return out
}

// cpuTime is the user and system CPU time pid has used, all its threads
// (utime and stime of /proc/<pid>/stat).
func cpuTime(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(st.UTime+st.STime) * clockTick, nil
}

// ioCalls is the number of read and write system calls pid has made, all
// its threads: syscr plus syscw of /proc/<pid>/io.
func ioCalls(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	io, err := p.IO()
	if err != nil {
		return 0, err
	}
	return int64(io.SyscR + io.SyscW), nil
}
