// An SMSC for flashotp's tests, on node-smpp (the npm package smpp, an SMPP 3.4/5.0 implementation the
// project did not write: it parses every PDU the engine sends and refuses malformed ones).
//
//   node smsc.js PORT SYSTEM_ID PASSWORD [KEY_FILE CERT_FILE]
//
// With a key and a certificate (PEM files) it speaks SMPP over TLS.
//
// It accepts bind_transceiver with these credentials (else ESME_RINVPASWD or ESME_RINVSYSID), answers
// enquire_link and sends its own every second (printing {"event":"enquire_link_resp"} for each answer), answers submit_sm with a message_id and prints one JSON line
// per submit_sm on stdout ({"event":"submit",...}: addresses, esm_class, data_coding, the UDH, the text
// node-smpp decoded), and when registered_delivery asks for it sends a delivery receipt (deliver_sm,
// esm_class 0x04, the SMPP 3.4 appendix B text and the receipted_message_id and message_state TLVs)
// 50 ms later: stat UNDELIV for a destination ending in 0000, EXPIRED for 0001, REJECTD for 0002, DELIVRD
// else. A destination ending in 0003 is answered ESME_RINVDSTADR; one ending in 0004 gets ESME_RTHROTTLED
// the first time each. It prints {"event":"listening"} when it listens, {"event":"bound"} on a bind.
'use strict';
const smpp = require('smpp');

const [port, systemID, password, keyFile, certFile] = process.argv.slice(2);
const fs = require('fs');
let nextID = 1;
const throttled = new Set();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const stamp = () => {
	const d = new Date(), p = (n) => String(n).padStart(2, '0');
	return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
};

const options = keyFile ? {key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile)} : {};
const server = smpp.createServer(options, (session) => {
	let timer = null;
	session.on('error', (err) => out({event: 'error', error: String(err)}));
	session.on('close', () => clearInterval(timer));
	session.on('bind_transceiver', (pdu) => {
		if (pdu.system_id !== systemID) {
			session.send(pdu.response({command_status: smpp.ESME_RINVSYSID}));
			out({event: 'bind_refused', system_id: pdu.system_id});
			return;
		}
		if (pdu.password !== password) {
			session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
			out({event: 'bind_refused', system_id: pdu.system_id});
			return;
		}
		session.send(pdu.response({system_id: 'flashotp-test-smsc'}));
		out({event: 'bound', system_id: pdu.system_id, system_type: pdu.system_type, interface_version: pdu.interface_version});
		timer = setInterval(() => session.enquire_link({}, (resp) => out({event: 'enquire_link_resp', status: resp.command_status})), 1000);
	});
	session.on('enquire_link', (pdu) => session.send(pdu.response()));
	session.on('unbind', (pdu) => {
		out({event: 'unbind'});
		session.send(pdu.response());
		session.close();
	});
	session.on('submit_sm', (pdu) => {
		const to = pdu.destination_addr;
		if (to.endsWith('0003')) {
			session.send(pdu.response({command_status: smpp.ESME_RINVDSTADR}));
			return;
		}
		if (to.endsWith('0004') && !throttled.has(to)) {
			throttled.add(to);
			session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
			return;
		}
		const id = (nextID++).toString(16).toUpperCase();
		const sm = pdu.short_message || {};
		out({event: 'submit', message_id: id, source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
			source_addr_npi: pdu.source_addr_npi, destination_addr: to, dest_addr_ton: pdu.dest_addr_ton,
			dest_addr_npi: pdu.dest_addr_npi, esm_class: pdu.esm_class, data_coding: pdu.data_coding,
			registered_delivery: pdu.registered_delivery,
			udh: (sm.udh || []).map((b) => Buffer.from(b).toString('hex')), text: sm.message});
		session.send(pdu.response({message_id: id}));
		if ((pdu.registered_delivery & 3) === 0) return;
		const stat = to.endsWith('0000') ? ['UNDELIV', 5] : to.endsWith('0001') ? ['EXPIRED', 3]
			: to.endsWith('0002') ? ['REJECTD', 8] : ['DELIVRD', 2];
		setTimeout(() => {
			const done = stat[0] === 'DELIVRD' ? '001' : '000';
			session.deliver_sm({
				source_addr: to, source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
				destination_addr: pdu.source_addr, esm_class: 0x04,
				short_message: `id:${id} sub:001 dlvrd:${done} submit date:${stamp()} done date:${stamp()} stat:${stat[0]} err:000 text:`,
				receipted_message_id: id, message_state: stat[1],
			});
			out({event: 'receipt', message_id: id, stat: stat[0]});
		}, 50);
	});
});
server.listen(Number(port), '127.0.0.1', () => out({event: 'listening', port: server.address().port}));
process.on('SIGTERM', () => process.exit(0));
