package scenario

import (
	"testing"

	"go.uber.org/goleak"
)

func TestScenarioMixAndAdvance(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := Spec{Topics: 30, Queues: 2, Groups: 20, BrokerGroups: 3}
	c, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cnt := Count(s)
	for _, st := range []GroupState{CaughtUp, Lagging, Stalled, Offline, Broadcasting} {
		if cnt.States[st] == 0 {
			t.Errorf("no %s group", st)
		}
	}
	if n := len(c.Nodes()); n != cnt.Nodes {
		t.Errorf("%d nodes, want %d", n, cnt.Nodes)
	}
	lagging, caught := 4, 0 // State(4) lags, State(0) is caught up
	ti := Subscriptions(lagging, s)[0]
	g := BrokerGroup(ti % s.BrokerGroups)
	before := c.ConsumerOffset(g, Group(lagging), Topic(ti), 0)
	if c.MaxOffset(g, Topic(ti), 0) <= before {
		t.Fatal("lagging group does not lag")
	}
	tc := Subscriptions(caught, s)[0]
	gc := BrokerGroup(tc % s.BrokerGroups)
	if c.ConsumerOffset(gc, Group(caught), Topic(tc), 0) != c.MaxOffset(gc, Topic(tc), 0) {
		t.Fatal("caught-up group lags")
	}
	moved, err := Advance(c, s, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range s.Groups {
		if State(i) == Lagging {
			want += len(Subscriptions(i, s))
		}
	}
	if moved != want {
		t.Errorf("Advance moved %d pairs, want %d", moved, want)
	}
	if c.ConsumerOffset(g, Group(lagging), Topic(ti), 0)+c.ConsumerOffset(g, Group(lagging), Topic(ti), 1) <= before {
		t.Error("Advance did not move the lagging group")
	}
}
