//go:build race

package canary

// raceDetector: rocketmq-client-go v2.1.2 has data races of its own
// (pushConsumer.messageQueueChanged writes the SubscriptionData the
// heartbeat and route goroutines clone; processQueue's message tree is
// written by the pull loop and read by the consumer without one lock), so
// tests that run the library skip under -race; TestConcurrentProbing
// covers the canary's own code with a fake client.
const raceDetector = true
