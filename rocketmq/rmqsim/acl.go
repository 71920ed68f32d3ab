package rmqsim

import (
	"fmt"

	"github.com/rocketmq-exporter/rocketmq_exporter/rocketmq"
)

// ACL failures answer SYSTEM_ERROR with the AclException text the 4.9.7
// broker sends (fixtures rocketmq-4.9.7/acl): the plain ACL hook throws
// before any processor runs.
const (
	aclPrefix       = "org.apache.rocketmq.acl.common.AclException: "
	aclNoAccessKey  = aclPrefix + "No accessKey is configured, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:663)"
	aclNoConfigFmt  = "No acl config for %s, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:667)"
	aclBadSignature = "Check signature failed for accessKey=%s, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"
)

// checkACL returns the refusal remark, or "" when the request is signed by
// a known account.
func (c *Cluster) checkACL(req *rocketmq.Command) string {
	ak := req.ExtFields[rocketmq.ExtAccessKey]
	if ak == "" {
		return aclNoAccessKey
	}
	acct, ok := c.acl[ak]
	if !ok {
		return aclPrefix + fmt.Sprintf(aclNoConfigFmt, ak)
	}
	if !rocketmq.VerifySignature(acct.SecretKey, req.ExtFields, req.Body) {
		return aclPrefix + fmt.Sprintf(aclBadSignature, ak)
	}
	return ""
}
