package natsx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/inkstream/inkstream/pkg/events"
)

// Role is a NATS user of inkstream. Each process connects as its own role,
// whose permissions allow its job and nothing else.
type Role string

// The roles. Admin provisions, purges and deletes (inkstream provision,
// rebuild, verify, the NATS CLI); the services each do their own job only.
// Sys is the system account's user, which the NATS CLI's server commands
// (nats server list, nats server report) need in a cluster.
const (
	RoleAdmin      Role = "admin"
	RoleCommandAPI Role = "command-api"
	RoleProjector  Role = "projector"
	RoleQueryAPI   Role = "query-api"
	RoleSys        Role = "sys"
)

// AccountRoles are the roles of the account that holds inkstream's stream
// and bucket, admin first.
var AccountRoles = []Role{RoleAdmin, RoleCommandAPI, RoleProjector, RoleQueryAPI}

// jsAPI is the JetStream API subject of one request ($JS.API.<what>).
func jsAPI(what string) string { return "$JS.API." + what }

// Permissions are what role may publish and subscribe to; nil for admin
// and sys, which may do anything in their account. The subjects are those
// that nats.go and orbit.go send (read from their sources and nats-server's):
//
//   - every role reads replies on _INBOX.>;
//   - the command API publishes events (articles.>, atomic batches too),
//     and reads the stream: its info, a message from its leader
//     (STREAM.MSG.GET, for the last event of an article) and direct gets
//     (DIRECT.GET, an article's history); readiness asks for the bucket's
//     stream info too. An erasure (DELETE ?erase=true, an admin's token)
//     purges the article's events: so it may send STREAM.PURGE.ARTICLES,
//     which NATS cannot narrow to one article's subjects;
//   - the projector pulls from its durable consumer (CONSUMER.MSG.NEXT)
//     and acknowledges ($JS.ACK.ARTICLES.projector.>, in the old and the
//     new ack format), reads its info, replays histories with direct gets,
//     and reads and writes the bucket (puts and purges are publishes to
//     $KV.articles.<key>; gets are direct gets, one key's last message or
//     many keys' in a batch);
//   - the query API reads the bucket: its view follows it with ordered
//     consumers on KV_articles that it creates, pulls from and deletes, and
//     reads keys with direct gets; it reads the stream (direct and leader
//     gets, info) and the projector consumer's info (its ack floor, for
//     read-your-writes and the lag metric). Its live feed follows the
//     stream with ordered consumers on ARTICLES that it creates, pulls
//     from and deletes; it is denied the projector's durable consumer by
//     name (creating, pulling from, deleting it).
//
// Nobody but admin creates, updates or deletes a stream or a durable
// consumer, and only admin (and the command API, for an erasure) purges.
func Permissions(role Role) *server.Permissions {
	streamInfo := jsAPI("STREAM.INFO." + Stream)
	bucketInfo := jsAPI("STREAM.INFO." + BucketStream)
	directGet := jsAPI("DIRECT.GET." + Stream)
	leaderGet := jsAPI("STREAM.MSG.GET." + Stream)
	consumerInfo := jsAPI("CONSUMER.INFO." + Stream + "." + ConsumerName)
	kvGet := jsAPI("DIRECT.GET." + BucketStream + "." + BucketSubjects)
	kvGetMany := jsAPI("DIRECT.GET." + BucketStream)
	var pub, deny []string
	switch role {
	case RoleCommandAPI:
		pub = []string{events.StreamSubjects, streamInfo, bucketInfo, leaderGet, directGet, jsAPI("STREAM.PURGE." + Stream)}
	case RoleProjector:
		pub = []string{streamInfo, bucketInfo, consumerInfo,
			jsAPI("CONSUMER.MSG.NEXT." + Stream + "." + ConsumerName),
			"$JS.ACK." + Stream + "." + ConsumerName + ".>",
			"$JS.ACK.*.*." + Stream + "." + ConsumerName + ".>",
			directGet, BucketSubjects, kvGet, kvGetMany}
	case RoleQueryAPI:
		pub = []string{streamInfo, bucketInfo, consumerInfo, leaderGet, directGet, kvGet, kvGetMany,
			jsAPI("CONSUMER.CREATE." + BucketStream + ".>"),
			jsAPI("CONSUMER.MSG.NEXT." + BucketStream + ".>"),
			jsAPI("CONSUMER.DELETE." + BucketStream + ".>"),
			jsAPI("CONSUMER.INFO." + BucketStream + ".>"),
			jsAPI("CONSUMER.CREATE." + Stream + ".>"),
			jsAPI("CONSUMER.MSG.NEXT." + Stream + ".>"),
			jsAPI("CONSUMER.DELETE." + Stream + ".>"),
			jsAPI("CONSUMER.INFO." + Stream + ".>")}
		durable := Stream + "." + ConsumerName
		deny = []string{jsAPI("CONSUMER.CREATE." + durable), jsAPI("CONSUMER.CREATE." + durable + ".>"),
			jsAPI("CONSUMER.MSG.NEXT." + durable), jsAPI("CONSUMER.DELETE." + durable)}
	default:
		return nil
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// User is how one role authenticates to an inkstream NATS server: with an
// nkey (its public key here, the seed in the role's file), or with a
// user name and password.
type User struct {
	Role     Role
	NKey     string // public key (U...)
	Password string // with the role as user name, when there is no NKey
}

// serverUsers configures o to let in exactly users, each with the
// permissions of its role, in the server's global account: nobody
// connects without credentials.
func serverUsers(o *server.Options, users []User) {
	for _, u := range users {
		if u.NKey != "" {
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: Permissions(u.Role)})
		} else {
			o.Users = append(o.Users, &server.User{Username: string(u.Role), Password: u.Password, Permissions: Permissions(u.Role)})
		}
	}
}

// AccountsConfig is the accounts block of a nats-server config file (the
// part inside `accounts { ... }`) for users: account INKSTREAM, with
// JetStream, for the roles of AccountRoles, and account SYS for RoleSys.
// deployments/nats/nats.conf includes it.
func AccountsConfig(users []User) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by `inkstream creds`: inkstream's NATS users, one per role, each\n" +
		"# with the permissions of its job (natsx.Permissions). Public keys only.\n")
	write := func(account string, jetstream bool, roles []Role) error {
		fmt.Fprintf(&b, "%s {\n", account)
		if jetstream {
			b.WriteString("  jetstream: enabled\n")
		}
		b.WriteString("  users: [\n")
		for _, r := range roles {
			i := slices.IndexFunc(users, func(u User) bool { return u.Role == r })
			if i < 0 || users[i].NKey == "" {
				return fmt.Errorf("no nkey for role %s", r)
			}
			fmt.Fprintf(&b, "    # %s\n    {nkey: %s", r, users[i].NKey)
			if p := Permissions(r); p != nil {
				deny := ""
				if len(p.Publish.Deny) > 0 {
					deny = ", deny: " + quoteList(p.Publish.Deny)
				}
				fmt.Fprintf(&b, ", permissions: {\n      publish: {allow: %s%s}\n      subscribe: {allow: %s}\n    }",
					quoteList(p.Publish.Allow), deny, quoteList(p.Subscribe.Allow))
			}
			b.WriteString("}\n")
		}
		b.WriteString("  ]\n}\n")
		return nil
	}
	if err := write("INKSTREAM", true, AccountRoles); err != nil {
		return "", err
	}
	if err := write("SYS", false, []Role{RoleSys}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// quoteList writes subjects as a config list of quoted strings: a quoted
// "$JS..." is a subject, not a variable.
func quoteList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = `"` + s + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}
