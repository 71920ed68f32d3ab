package rocketmq

import (
	"errors"
	"fmt"
)

// ResponseError is a well-formed answer with a non-success code. It keeps the
// peer's remark, which is usually the only explanation a broker gives (for
// example "NoSuchElementException" in the first seconds after start).
type ResponseError struct {
	RequestCode int
	Code        int
	Remark      string
}

func (e *ResponseError) Error() string {
	if e.Remark == "" {
		return fmt.Sprintf("rocketmq: request %d: code %d", e.RequestCode, e.Code)
	}
	return fmt.Sprintf("rocketmq: request %d: code %d: %s", e.RequestCode, e.Code, e.Remark)
}

// IsCode reports whether err is a *ResponseError with the given code.
func IsCode(err error, code int) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.Code == code
}

// IsNotSupported reports whether the peer said it does not know the request
// (code 3), as a 4.9 broker does for 5.x-only requests.
func IsNotSupported(err error) bool { return IsCode(err, ResponseRequestCodeNotSupported) }
