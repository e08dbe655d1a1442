package call

// Classify maps a final SIP status code of an INVITE to its failure reason. It is the one place that
// does; code 0 stands for a transport error or no response.
func Classify(code int) Reason {
	switch code {
	case 486, 600:
		return ReasonBusy
	case 603, 403:
		return ReasonRejected
	case 404, 484, 410:
		return ReasonNotFound
	case 480, 408:
		return ReasonUnavailable
	case 401, 407:
		return ReasonAuthFailed
	}
	switch {
	case code >= 300 && code < 500:
		return ReasonClientError
	default: // 5xx, 6xx not named above, 0
		return ReasonTrunkError
	}
}
