package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDeliveryDataIsTheMapsJSON: the intake record's data is byte for byte
// what the map it replaced gave, so records before and after read alike.
func TestDeliveryDataIsTheMapsJSON(t *testing.T) {
	for _, d := range []deliveryData{
		{Action: "opened", Event: "pull_request", Kind: "change", Sender: "alice (1)"},
		{},
		{Action: `a"b\c`, Event: "<push>&", Kind: "\u2028", Sender: "bøb \x01"},
	} {
		got, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]string{"event": d.Event, "action": d.Action, "kind": d.Kind, "sender": d.Sender})
		if !bytes.Equal(got, want) {
			t.Errorf("struct %s, map %s", got, want)
		}
	}
}
