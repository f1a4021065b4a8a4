package natsx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// Credentials is a directory of generated credentials: an nkey seed per
// role (<role>.nk), the accounts block of a server config that lets those
// roles in (accounts.conf), and NATS CLI contexts (<role>.json). Every
// file is private to its owner (0600), the directory too (0700). The
// all-in-one keeps its own in <data-dir>/nats, `make cluster` in
// <data-dir>/auth, and `inkstream creds` writes them where it is told.
type Credentials struct{ Dir string }

// EnsureCredentials makes dir and an nkey seed for each role that has none
// yet. Seeds that exist are kept, so a restart keeps its credentials.
func EnsureCredentials(dir string, roles ...Role) (Credentials, error) {
	c := Credentials{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	for _, r := range roles {
		if _, err := os.Stat(c.SeedFile(r)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("credentials: %w", err)
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return c, fmt.Errorf("credentials: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return c, fmt.Errorf("credentials: %w", err)
		}
		f, err := os.OpenFile(c.SeedFile(r), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return c, fmt.Errorf("credentials: %w", err)
		}
		_, err = f.Write(append(seed, '\n'))
		if err = errors.Join(err, f.Close()); err != nil {
			return c, fmt.Errorf("credentials: %w", err)
		}
	}
	return c, nil
}

// SeedFile is the file of role's nkey seed (what -nats-nkey takes).
func (c Credentials) SeedFile(r Role) string { return filepath.Join(c.Dir, string(r)+".nk") }

// ContextFile is the NATS CLI context of role (what NATS_CONTEXT takes).
func (c Credentials) ContextFile(r Role) string { return filepath.Join(c.Dir, string(r)+".json") }

// AccountsFile is the accounts block that deployments/nats/nats.conf
// includes (as auth/accounts.conf).
func (c Credentials) AccountsFile() string { return filepath.Join(c.Dir, "accounts.conf") }

// Users reads the public key of each role's seed.
func (c Credentials) Users(roles ...Role) ([]User, error) {
	var users []User
	for _, r := range roles {
		seed, err := os.ReadFile(c.SeedFile(r))
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		kp, err := nkeys.ParseDecoratedNKey(seed)
		if err != nil {
			return nil, fmt.Errorf("credentials: %s: %w", c.SeedFile(r), err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("credentials: %s: %w", c.SeedFile(r), err)
		}
		users = append(users, User{Role: r, NKey: pub})
	}
	return users, nil
}

// WriteAccounts writes AccountsFile for the roles of AccountRoles and RoleSys.
func (c Credentials) WriteAccounts() error {
	users, err := c.Users(append(AccountRoles, RoleSys)...)
	if err != nil {
		return err
	}
	conf, err := AccountsConfig(users)
	if err != nil {
		return err
	}
	return writePrivate(c.AccountsFile(), []byte(conf))
}

// WriteContext writes the NATS CLI context of role for servers urls: the
// nkey seed by its absolute path, so it works from any directory.
func (c Credentials) WriteContext(r Role, urls string) error {
	seed, err := filepath.Abs(c.SeedFile(r))
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Description string `json:"description"`
		URL         string `json:"url"`
		NKey        string `json:"nkey"`
	}{"inkstream " + string(r), urls, seed}, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(c.ContextFile(r), append(b, '\n'))
}

// writePrivate writes a file only its owner may read, replacing what was there.
func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// DeploymentCredentials makes (or keeps) the credentials of a deployment
// in dir: an nkey per role of AccountRoles and RoleSys, the servers'
// AccountsFile, and the NATS CLI contexts of the admin and the system
// user for the servers urls.
func DeploymentCredentials(dir, urls string) (Credentials, error) {
	c, err := EnsureCredentials(dir, append(AccountRoles, RoleSys)...)
	if err != nil {
		return c, err
	}
	if err := c.WriteAccounts(); err != nil {
		return c, err
	}
	for _, r := range []Role{RoleAdmin, RoleSys} {
		if err := c.WriteContext(r, urls); err != nil {
			return c, err
		}
	}
	return c, nil
}
