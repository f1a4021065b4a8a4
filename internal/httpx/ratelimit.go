package httpx

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// RateLimit answers 429 with Retry-After to a client that makes more
// than perSecond requests a second, after a burst of burst. A client is
// its token's subject (httpx.PrincipalOf), else its IP address: install
// it after the authentication middleware. The limits are token buckets
// (golang.org/x/time/rate), one per client, forgotten once full again.
func RateLimit(perSecond float64, burst int) fiber.Handler {
	l := &limiters{limit: rate.Limit(perSecond), burst: burst, seed: maphash.MakeSeed()}
	for i := range l.shard {
		l.shard[i].m = make(map[string]*rate.Limiter)
	}
	return func(c *fiber.Ctx) error {
		key := "sub:" + PrincipalOf(c).Subject
		if key == "sub:" {
			key = "ip:" + c.IP()
		}
		now := time.Now()
		r := l.get(key, now).ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			p := NewProblem(http.StatusTooManyRequests, fmt.Sprintf("more than %g writes a second from this client; retry later", perSecond))
			p.RetryAfter = max(1, int(math.Ceil(d.Seconds())))
			return p
		}
		return c.Next()
	}
}

// limiterShards spread the clients over locks.
const limiterShards = 32

// limiterMax bounds the clients a shard remembers; past it the clients
// whose bucket is full again (who could not be limited anyway) are
// forgotten.
const limiterMax = 4096

type limiters struct {
	limit rate.Limit
	burst int
	seed  maphash.Seed
	shard [limiterShards]struct {
		mu sync.Mutex
		m  map[string]*rate.Limiter
	}
}

func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	sh := &l.shard[maphash.String(l.seed, key)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if lim, ok := sh.m[key]; ok {
		return lim
	}
	if len(sh.m) >= limiterMax {
		for k, lim := range sh.m {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(sh.m, k)
			}
		}
		if len(sh.m) >= limiterMax { // all busy: start afresh rather than grow
			clear(sh.m)
		}
	}
	lim := rate.NewLimiter(l.limit, l.burst)
	sh.m[key] = lim
	return lim
}
