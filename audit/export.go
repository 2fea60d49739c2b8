package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrBadExport: a line of an export is not one record as `audit export`
// writes it.
var ErrBadExport = errors.New("malformed export record")

// DecodeRecord parses one line of an export strictly: exactly one JSON
// object, no member this package does not know, and no member twice at any
// depth. Duplicates matter: encoding/json keeps the last of them, another
// tool may keep the first, so a line with both an honest and an edited value
// could verify here and read differently there.
func DecodeRecord(line []byte) (Record, error) {
	if err := noDuplicateKeys(line); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Record{}, fmt.Errorf("%w: more than one JSON value on the line", ErrBadExport)
	}
	return r, nil
}

func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if seen[key] {
					return fmt.Errorf("member %q appears twice", key)
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk()
}
