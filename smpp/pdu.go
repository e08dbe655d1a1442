package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Command IDs (SMPP 3.4 section 5.1.2.1).
const (
	cmdGenericNack         uint32 = 0x80000000
	cmdBindTransceiver     uint32 = 0x00000009
	cmdBindTransceiverResp uint32 = 0x80000009
	cmdSubmitSM            uint32 = 0x00000004
	cmdSubmitSMResp        uint32 = 0x80000004
	cmdDeliverSM           uint32 = 0x00000005
	cmdDeliverSMResp       uint32 = 0x80000005
	cmdUnbind              uint32 = 0x00000006
	cmdUnbindResp          uint32 = 0x80000006
	cmdEnquireLink         uint32 = 0x00000015
	cmdEnquireLinkResp     uint32 = 0x80000015
)

// Command statuses (SMPP 3.4 section 5.1.3) the client tells apart.
const (
	statusOK         uint32 = 0x00
	statusInvMsgLen  uint32 = 0x01
	statusInvCmdLen  uint32 = 0x02
	statusInvCmdID   uint32 = 0x03
	statusInvBndSts  uint32 = 0x04
	statusAlyBnd     uint32 = 0x05
	statusSysErr     uint32 = 0x08
	statusInvSrcAdr  uint32 = 0x0A
	statusInvDstAdr  uint32 = 0x0B
	statusInvMsgID   uint32 = 0x0C
	statusBindFail   uint32 = 0x0D
	statusInvPaswd   uint32 = 0x0E
	statusInvSysID   uint32 = 0x0F
	statusMsgQFul    uint32 = 0x14
	statusInvEsmCls  uint32 = 0x43
	statusSubmitFail uint32 = 0x45
	statusInvSrcTON  uint32 = 0x48
	statusInvSrcNPI  uint32 = 0x49
	statusInvDstTON  uint32 = 0x50
	statusInvDstNPI  uint32 = 0x51
	statusInvSysTyp  uint32 = 0x53
	statusThrottled  uint32 = 0x58
	statusInvDCS     uint32 = 0x104
)

var statusNames = map[uint32]string{
	statusOK: "ESME_ROK", statusInvMsgLen: "ESME_RINVMSGLEN", statusInvCmdLen: "ESME_RINVCMDLEN",
	statusInvCmdID: "ESME_RINVCMDID", statusInvBndSts: "ESME_RINVBNDSTS", statusAlyBnd: "ESME_RALYBND",
	statusSysErr: "ESME_RSYSERR", statusInvSrcAdr: "ESME_RINVSRCADR", statusInvDstAdr: "ESME_RINVDSTADR",
	statusInvMsgID: "ESME_RINVMSGID", statusBindFail: "ESME_RBINDFAIL", statusInvPaswd: "ESME_RINVPASWD",
	statusInvSysID: "ESME_RINVSYSID", statusMsgQFul: "ESME_RMSGQFUL", statusInvEsmCls: "ESME_RINVESMCLASS",
	statusSubmitFail: "ESME_RSUBMITFAIL", statusInvSrcTON: "ESME_RINVSRCTON", statusInvSrcNPI: "ESME_RINVSRCNPI",
	statusInvDstTON: "ESME_RINVDSTTON", statusInvDstNPI: "ESME_RINVDSTNPI", statusInvSysTyp: "ESME_RINVSYSTYP",
	statusThrottled: "ESME_RTHROTTLED", statusInvDCS: "ESME_RINVDCS",
}

// statusName names a command status as SMPP 3.4 does, with its number.
func statusName(s uint32) string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%08X)", n, s)
	}
	return fmt.Sprintf("command_status 0x%08X", s)
}

// Optional parameter (TLV) tags used here.
const (
	tagReceiptedMessageID uint16 = 0x001E
	tagMessageState       uint16 = 0x0427
	tagMessagePayload     uint16 = 0x0424
)

// Limits of a PDU: its header, and the longest the client reads (a deliver_sm with a message_payload
// of a long text is a few KiB; anything near this bound is garbage or an attack).
const (
	headerLen = 16
	maxPDULen = 64 << 10
)

// Errors of the PDU codec.
var (
	// errPDULength is returned for a command_length below the header's or above maxPDULen.
	errPDULength = errors.New("smpp: bad command_length")
	// errShortBody is returned for a body that ends inside a field.
	errShortBody = errors.New("smpp: PDU body ends inside a field")
	// errCString is returned for a C-octet string without its NUL within its maximum length.
	errCString = errors.New("smpp: C-octet string too long or not terminated")
)

// pdu is one SMPP PDU: the header's fields and the body as octets.
type pdu struct {
	ID     uint32
	Status uint32
	Seq    uint32
	Body   []byte
}

// marshal returns p as it goes on the wire.
func (p pdu) marshal() []byte {
	b := make([]byte, headerLen, headerLen+len(p.Body))
	binary.BigEndian.PutUint32(b[0:], uint32(headerLen+len(p.Body)))
	binary.BigEndian.PutUint32(b[4:], p.ID)
	binary.BigEndian.PutUint32(b[8:], p.Status)
	binary.BigEndian.PutUint32(b[12:], p.Seq)
	return append(b, p.Body...)
}

// readPDU reads one PDU from r. A command_length out of bounds is errPDULength: the stream cannot be
// resynchronised after it, so the caller drops the connection.
func readPDU(r io.Reader) (pdu, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return pdu{}, err
	}
	n := binary.BigEndian.Uint32(h[0:])
	if n < headerLen || n > maxPDULen {
		return pdu{}, fmt.Errorf("%w: %d", errPDULength, n)
	}
	p := pdu{ID: binary.BigEndian.Uint32(h[4:]), Status: binary.BigEndian.Uint32(h[8:]),
		Seq: binary.BigEndian.Uint32(h[12:]), Body: make([]byte, n-headerLen)}
	if _, err := io.ReadFull(r, p.Body); err != nil {
		return pdu{}, err
	}
	return p, nil
}

// writer builds a PDU body.
type writer struct{ bytes.Buffer }

// cstring appends s and its NUL; the caller has checked its length.
func (w *writer) cstring(s string) { w.WriteString(s); w.WriteByte(0) }

func (w *writer) u8(v byte) { w.WriteByte(v) }

func (w *writer) tlv(tag uint16, v []byte) {
	var h [4]byte
	binary.BigEndian.PutUint16(h[0:], tag)
	binary.BigEndian.PutUint16(h[2:], uint16(len(v)))
	w.Write(h[:])
	w.Write(v)
}

// reader reads a PDU body; the first error sticks.
type reader struct {
	b   []byte
	err error
}

// cstring reads a C-octet string of at most max octets, its NUL included.
func (r *reader) cstring(max int) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b, 0)
	if i < 0 || i+1 > max {
		r.err = errCString
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *reader) u8() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = errShortBody
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) octets(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errShortBody
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// tlvs reads the optional parameters that end a body.
func (r *reader) tlvs() map[uint16][]byte {
	m := map[uint16][]byte{}
	for r.err == nil && len(r.b) > 0 {
		h := r.octets(4)
		if h == nil {
			break
		}
		v := r.octets(int(binary.BigEndian.Uint16(h[2:])))
		m[binary.BigEndian.Uint16(h[0:])] = v
	}
	return m
}

// Field lengths of SMPP 3.4 section 4, NUL included.
const (
	maxSystemID   = 16
	maxPassword   = 9
	maxSystemType = 13
	maxAddr       = 21
	maxMessageID  = 65
	maxShortMsg   = 254
)

// bindBody is a bind_transceiver's body (SMPP 3.4 section 4.1.5).
func bindBody(systemID, password, systemType string) []byte {
	var w writer
	w.cstring(systemID)
	w.cstring(password)
	w.cstring(systemType)
	w.u8(0x34) // interface_version
	w.u8(0)    // addr_ton
	w.u8(0)    // addr_npi
	w.cstring("")
	return w.Bytes()
}

// address is a source or destination address with its type of number and numbering plan.
type address struct {
	TON, NPI byte
	Addr     string
}

// submit is what a submit_sm carries (SMPP 3.4 section 4.4.1).
type submit struct {
	Source, Dest address
	ESMClass     byte
	DataCoding   byte
	Registered   byte
	UD           []byte // the short message: user data header (when ESMClass has 0x40) and text
}

func (s submit) body() []byte {
	var w writer
	w.cstring("") // service_type: the SMSC's default
	w.u8(s.Source.TON)
	w.u8(s.Source.NPI)
	w.cstring(s.Source.Addr)
	w.u8(s.Dest.TON)
	w.u8(s.Dest.NPI)
	w.cstring(s.Dest.Addr)
	w.u8(s.ESMClass)
	w.u8(0)       // protocol_id
	w.u8(0)       // priority_flag
	w.cstring("") // schedule_delivery_time: now
	w.cstring("") // validity_period: the SMSC's default
	w.u8(s.Registered)
	w.u8(0) // replace_if_present_flag
	w.u8(s.DataCoding)
	w.u8(0) // sm_default_msg_id
	if len(s.UD) <= maxShortMsg {
		w.u8(byte(len(s.UD)))
		w.Write(s.UD)
	} else {
		// Parts are at most 140 octets; a longer one cannot happen, but message_payload is the way.
		w.u8(0)
		w.tlv(tagMessagePayload, s.UD)
	}
	return w.Bytes()
}

// deliver is what a deliver_sm carries that the client reads (SMPP 3.4 section 4.6.1).
type deliver struct {
	Source, Dest address
	ESMClass     byte
	DataCoding   byte
	Message      []byte // short_message, or message_payload when short_message is empty
	TLVs         map[uint16][]byte
}

func parseDeliver(b []byte) (deliver, error) {
	r := reader{b: b}
	var d deliver
	r.cstring(6) // service_type
	d.Source.TON, d.Source.NPI, d.Source.Addr = r.u8(), r.u8(), r.cstring(maxAddr)
	d.Dest.TON, d.Dest.NPI, d.Dest.Addr = r.u8(), r.u8(), r.cstring(maxAddr)
	d.ESMClass = r.u8()
	r.u8()        // protocol_id
	r.u8()        // priority_flag
	r.cstring(17) // schedule_delivery_time
	r.cstring(17) // validity_period
	r.u8()        // registered_delivery
	r.u8()        // replace_if_present_flag
	d.DataCoding = r.u8()
	r.u8() // sm_default_msg_id
	d.Message = r.octets(int(r.u8()))
	d.TLVs = r.tlvs()
	if r.err != nil {
		return deliver{}, fmt.Errorf("deliver_sm: %w", r.err)
	}
	if len(d.Message) == 0 {
		d.Message = d.TLVs[tagMessagePayload]
	}
	return d, nil
}

// parseMessageID reads a submit_sm_resp's or bind_transceiver_resp's one C-octet string (message_id,
// system_id); an empty body (some SMSCs send one with an error status) is an empty string.
func parseMessageID(b []byte, max int) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	r := reader{b: b}
	s := r.cstring(max)
	return s, r.err
}
