package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcCPU is the CPU one process used during a load: the share of one core,
// and that share over the load's rate, the CPU time each request cost it.
type ProcCPU struct {
	Process  string  `json:"process"`
	Cores    float64 `json:"cores"`
	USPerReq float64 `json:"us_per_request"`
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuMeter measures the CPU of the load generator (this process) and of
// the processes under load over one span.
type cpuMeter struct {
	names  []string
	pids   []int
	before []time.Duration
	start  time.Time
}

func newCPUMeter(ps ...*proc) *cpuMeter {
	m := &cpuMeter{names: []string{"load generator (inkbench)"}, pids: []int{os.Getpid()}}
	for _, p := range ps {
		m.names = append(m.names, p.name)
		m.pids = append(m.pids, p.pid())
	}
	return m
}

// begin starts the span.
func (m *cpuMeter) begin() {
	m.before = make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		m.before[i], _ = cpuTime(pid)
	}
	m.start = time.Now()
}

// end closes the span; rate is the load's requests per second over it.
// Without /proc it returns nothing.
func (m *cpuMeter) end(rate float64) []ProcCPU {
	span := time.Since(m.start)
	var out []ProcCPU
	for i, pid := range m.pids {
		after, err := cpuTime(pid)
		if err != nil || m.before == nil || span <= 0 {
			return nil
		}
		c := ProcCPU{Process: m.names[i], Cores: float64(after-m.before[i]) / float64(span)}
		if rate > 0 {
			c.USPerReq = c.Cores / rate * 1e6
		}
		out = append(out, c)
	}
	return out
}

// cpuTime is the user and system CPU time pid has used, all its threads.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it start
	// after its closing parenthesis: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, os.ErrInvalid
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
