// Package rmqsim is a simulated RocketMQ deployment for tests, benchmarks
// and demos: NameServers, brokers (master/slave, DLedger with its DLedger
// port, 5.0 controller mode with a controller) speaking the real remoting
// protocol on 127.0.0.1.
//
// Answers imitate the recorded 4.9.7 and 5.0.0 servers (the fixtures in
// testdata/fixtures, which the shape test replays against the simulator): the
// same request codes, response codes and remarks, and bodies in fastjson's
// form — bare integer map keys, MessageQueue objects as map keys, sorted
// bean members, Java-style doubles — built from a live model of topics,
// queues, store timestamps and consumer offsets that tests mutate (Produce,
// Consume, SetOnline, …).
//
// Failover follows the recorded timelines with shortened durations (Timing):
// a killed node vanishes from the NameServers at once; in a DLedger group
// the survivors name the dead leader for StaleLeaderWindow, then elect the
// next live node (term + 1), whose broker becomes brokerId 0 / SYNC_MASTER
// and re-registers RoleChangeDelay later; a restarted node rejoins as a
// follower (brokerId selfId+1) after RegisterDelay. In controller mode the
// controller elects the first live in-sync slave after ControllerElection
// (masterEpoch + 1), the in-sync set shrinks to the new master and grows
// back as slaves reconnect. With Timing.Manual nothing happens on its own
// and tests step through the timeline with Elect, Promote, RegisterNow and
// SyncNow.
//
// Clients can publish and consume over the wire (messaging.go): brokers
// answer SEND_MESSAGE (10, 310), PULL_MESSAGE (11, long polling with the
// suspend flag, stored-message layout), HEART_BEAT (34), UNREGISTER_CLIENT
// (35), GET_CONSUMER_LIST_BY_GROUP (38) and UPDATE_CONSUMER_OFFSET (15), enough
// for rocketmq-client-go's producer and push consumer. Sent messages land in
// the same model as Produce. StallPulls and DropSends inject consumer-side
// stalls and silent message loss; the generic faults below, limited to one
// request code, make sends or pulls fail.
//
// Faults (slow answers, silence, resets in the middle of a frame, garbage,
// oversized length prefixes, error codes) can be injected per node or
// NameServer at runtime, optionally for one request code.
package rmqsim
