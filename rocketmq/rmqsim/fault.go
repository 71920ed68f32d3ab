package rmqsim

import (
	"fmt"
	"time"
)

// FaultKind selects how a faulty node misbehaves.
type FaultKind int

const (
	FaultNone FaultKind = iota
	// FaultSlow answers normally after Delay.
	FaultSlow
	// FaultNoAnswer reads the request and never answers; the connection
	// stays open.
	FaultNoAnswer
	// FaultResetMidFrame writes the first half of the answer, then resets
	// the connection.
	FaultResetMidFrame
	// FaultGarbage answers with bytes that are not a valid frame (a length
	// prefix followed by a header word of an unknown serialize type).
	FaultGarbage
	// FaultOversizedLength answers with a length prefix of about 2 GiB and
	// nothing else; a client must refuse it without allocating.
	FaultOversizedLength
	// FaultErrorCode answers with Code and Remark instead of the real answer.
	FaultErrorCode
	// FaultClose closes the connection as soon as the request is read,
	// without answering.
	FaultClose
)

func (k FaultKind) String() string {
	switch k {
	case FaultNone:
		return "none"
	case FaultSlow:
		return "slow"
	case FaultNoAnswer:
		return "no-answer"
	case FaultResetMidFrame:
		return "reset-mid-frame"
	case FaultGarbage:
		return "garbage"
	case FaultOversizedLength:
		return "oversized-length"
	case FaultErrorCode:
		return "error-code"
	case FaultClose:
		return "close"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is injected into a node or NameServer at runtime.
type Fault struct {
	Kind   FaultKind
	Delay  time.Duration // FaultSlow
	Code   int           // FaultErrorCode
	Remark string        // FaultErrorCode
	// RequestCode limits the fault to one request code; 0 means every request.
	RequestCode int
}

// Slow delays every answer by d.
func Slow(d time.Duration) Fault { return Fault{Kind: FaultSlow, Delay: d} }

// NoAnswer swallows requests.
func NoAnswer() Fault { return Fault{Kind: FaultNoAnswer} }

// ResetMidFrame cuts answers in half and resets the connection.
func ResetMidFrame() Fault { return Fault{Kind: FaultResetMidFrame} }

// Garbage answers with an invalid frame.
func Garbage() Fault { return Fault{Kind: FaultGarbage} }

// OversizedLength answers with a huge length prefix.
func OversizedLength() Fault { return Fault{Kind: FaultOversizedLength} }

// CloseConn closes the connection instead of answering.
func CloseConn() Fault { return Fault{Kind: FaultClose} }

// ErrorCode answers with code and remark.
func ErrorCode(code int, remark string) Fault {
	return Fault{Kind: FaultErrorCode, Code: code, Remark: remark}
}

// NoSuchElementRemark is what a 4.9.7 broker answers to
// GET_BROKER_RUNTIME_INFO in its first seconds (fixture startup-window).
const NoSuchElementRemark = "java.util.NoSuchElementException, java.base/java.util.LinkedList.getLast(LinkedList.java:261)"

// NoSuchElement is the startup-window answer of GET_BROKER_RUNTIME_INFO.
func NoSuchElement() Fault { return ErrorCode(1, NoSuchElementRemark).For(28) }

// For limits f to one request code.
func (f Fault) For(requestCode int) Fault {
	f.RequestCode = requestCode
	return f
}

func (f Fault) applies(code int) bool {
	return f.Kind != FaultNone && (f.RequestCode == 0 || f.RequestCode == code)
}
