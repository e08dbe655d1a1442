package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
	"flashotp/otp"
)

// queryParams are the query parameters each GET route takes; any other is refused, like an unknown JSON
// field.
var queryParams = map[string][]string{
	"/otp/status":      {"appid", "verification_id"},
	"/otp/list":        {"appid", "recipient", "status", "channel", "since", "until", "limit", "cursor"},
	"/otp/logs":        {"appid", "verification_id", "recipient", "type", "since", "until", "limit", "cursor"},
	"/otp/rate-limits": {"appid", "recipient"},
	"/otp/attempts":    {"appid", "verification_id", "recipient", "limit"},
	"/otp/reports":     {"appid", "since", "until", "group_by"},
}

// query reads a GET route's query into an otp.Query, refusing unknown parameters and bad values.
func query(c *fiber.Ctx) (otp.Query, error) {
	var q otp.Query
	err := onlyParams(c, queryParams[c.Route().Path])
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		name, val := string(k), string(v)
		if err != nil {
			return
		}
		switch name {
		case "appid":
			err = checkApp(c, val)
		case "recipient":
			// An unescaped '+' in a query string reads as a space; the '+' is optional anyway.
			q.Recipient = strings.TrimSpace(val)
		case "status":
			q.Status = val
		case "channel":
			q.Channel = val
		case "type":
			q.Type = val
		case "verification_id":
			q.ID = val
		case "cursor":
			q.Cursor = val
		case "since":
			q.Since, err = parseTime(name, val)
		case "until":
			q.Until, err = parseTime(name, val)
		case "limit":
			if q.Limit, err = strconv.Atoi(val); err != nil || q.Limit < 1 {
				err = fault.Errorf(fault.InvalidRequest, "limit: want a positive number, got %q", val)
			}
		}
	})
	q.AppID = appID(c)
	return q, err
}

// parseTime reads an RFC 3339 time or a date (UTC midnight), from 1970 on: IDs' timestamps begin there, and
// the zero time (0001-01-01) is how otp.Query says "not given", which a time given must never read as.
func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t, err = time.Parse(time.DateOnly, v)
	}
	switch {
	case err != nil:
		return time.Time{}, fault.Errorf(fault.InvalidRequest, "%s: want an RFC 3339 time or a date (YYYY-MM-DD), got %q", name, v)
	case t.Before(time.Unix(0, 0)):
		return time.Time{}, fault.Errorf(fault.InvalidRequest, "%s: want a time from 1970-01-01, got %q", name, v)
	}
	return t, nil
}
