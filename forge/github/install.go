package github

import (
	"fmt"

	"github.com/foureyes-dev/foureyes/bot"
)

// installPayload is the part of installation and installation_repositories
// payloads foureyes reads: the repositories the installation gained
// ("repositories" on installation.created, "repositories_added" on
// installation_repositories.added; each {id, name, full_name, private},
// @octokit/openapi-webhooks 12.1.0). Neither carries a "repository".
type installPayload struct {
	Action       string `json:"action"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender       pUser `json:"sender"`
	Repositories []struct {
		ID       int64  `json:"id"`
		FullName string `json:"full_name"`
	} `json:"repositories"`
	RepositoriesAdded []struct {
		ID       int64  `json:"id"`
		FullName string `json:"full_name"`
	} `json:"repositories_added"`
}

// decodeInstallation turns installation.created and
// installation_repositories.added into one bot.EventInstallation per
// repository gained: the service queues an evaluation of each of its open
// pull requests. Other actions need no work.
func (f *Forge) decodeInstallation(eventName string, body []byte) ([]bot.Event, error) {
	var p installPayload
	if err := unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("github: decoding %s payload: %w", eventName, err)
	}
	repos := p.Repositories
	switch {
	case eventName == "installation" && p.Action == "created":
	case eventName == "installation_repositories" && p.Action == "added":
		repos = p.RepositoriesAdded
	default:
		return nil, bot.ErrIgnored
	}
	if p.Installation == nil || p.Installation.ID == 0 {
		return nil, fmt.Errorf("github: %s payload has no installation", eventName)
	}
	var out []bot.Event
	for _, r := range repos {
		if r.FullName == "" {
			continue
		}
		out = append(out, bot.Event{
			Forge: bot.GitHub, Name: eventName, Action: p.Action, Kind: bot.EventInstallation,
			Sender: p.Sender.user(), Received: f.now(),
			Repo: bot.Repo{FullName: r.FullName, ID: r.ID, Installation: p.Installation.ID},
		})
	}
	if len(out) == 0 {
		return nil, bot.ErrIgnored
	}
	return out, nil
}
