package rocketmq

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
)

// Extension field names used by ACL 1.0 (and unchanged by ACL 2.0).
const (
	ExtAccessKey     = "AccessKey"
	ExtSecurityToken = "SecurityToken"
	ExtSignature     = "Signature"

	// extUniqueKeyQuery is left out of the signed content by the 4.9 broker
	// (PROTOCOL.md §1.6), so VerifySignature leaves it out too.
	extUniqueKeyQuery = "_UNIQUE_KEY_QUERY"
)

// Credentials is an ACL account. With ACL 2.0 AccessKey and SecretKey are the
// user name and password; the signature is the same.
type Credentials struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string
}

const redactedSecret = "<redacted>"

// String hides the secret parts, so that credentials printed by mistake (in a
// log line or an error) leak nothing but the account name.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKey: %q, SecretKey: %s, SecurityToken: %s}",
		c.AccessKey, maskSecret(c.SecretKey), maskSecret(c.SecurityToken))
}

// GoString keeps %#v as safe as %v.
func (c Credentials) GoString() string { return "rocketmq." + c.String() }

// LogValue keeps slog output as safe as fmt output.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key", c.AccessKey),
		slog.String("secret_key", maskSecret(c.SecretKey)),
		slog.String("security_token", maskSecret(c.SecurityToken)),
	)
}

func maskSecret(s string) string {
	if s == "" {
		return `""`
	}
	return redactedSecret
}

// Sign returns the ACL signature of a request: the values of all extFields
// except Signature, ordered by key, concatenated without separators and
// followed by the body, HMAC-SHA1 keyed with secretKey, in standard base64.
//
// Java orders the keys with a TreeMap (UTF-16 order); byte order is the same
// for the ASCII field names RocketMQ uses.
func Sign(secretKey string, ext map[string]string, body []byte) string {
	return signContent(secretKey, ext, body, ExtSignature)
}

// VerifySignature checks ext[Signature] the way a 4.9 broker does (which also
// leaves _UNIQUE_KEY_QUERY out of the content). It is meant for simulated
// brokers in tests; the comparison takes constant time.
func VerifySignature(secretKey string, ext map[string]string, body []byte) bool {
	got, ok := ext[ExtSignature]
	if !ok {
		return false
	}
	want := signContent(secretKey, ext, body, ExtSignature, extUniqueKeyQuery)
	return hmac.Equal([]byte(got), []byte(want))
}

func signContent(secretKey string, ext map[string]string, body []byte, skip ...string) string {
	keys := make([]string, 0, len(ext))
	for k := range ext {
		if !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(secretKey))
	for _, k := range keys {
		mac.Write([]byte(ext[k]))
	}
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signedExt returns a copy of ext with AccessKey, SecurityToken (when set)
// and the Signature over them added. ext itself is never modified: callers
// may share their maps between requests and goroutines.
func (c *Credentials) signedExt(ext map[string]string, body []byte) map[string]string {
	out := make(map[string]string, len(ext)+3)
	maps.Copy(out, ext)
	delete(out, ExtSignature)
	out[ExtAccessKey] = c.AccessKey
	if c.SecurityToken != "" {
		out[ExtSecurityToken] = c.SecurityToken
	} else {
		// A stale token from the caller's map must not be signed and sent
		// on behalf of an account that has none.
		delete(out, ExtSecurityToken)
	}
	out[ExtSignature] = Sign(c.SecretKey, out, body)
	return out
}
