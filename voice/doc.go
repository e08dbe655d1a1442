// Package voice is the voice channel's audio: the spoken prompts that carry a code, and the decoder that
// hears them back.
//
// A Library holds, per locale, twelve clips of 8 kHz G.711 mu-law samples (raw, no header): the digits
// 0.ul … 9.ul, intro.ul ("Your verification code is") and again.ul ("Again:"). The built-in library
// (Builtin) is made from text by scripts/prompts.sh with espeak-ng and sox and embedded in the binary, so
// nothing is needed at run time; an operator's own recordings (voice.prompts_dir) use the same layout,
// <dir>/<locale>/<name>.ul, and are checked whole when they are loaded. Prompt joins the clips of a code
// with silences between them: "intro 1 2 3 4 5 6, again 1 2 3 4 5 6".
//
// Decode is the other direction, for the demo phone and the tests: it finds the spoken clips in received
// audio by normalized cross-correlation against the library's own clips, so it hears only prompts made
// from the same library, but survives the G.711 A-law round trip, lost or late packets and any silence
// before the prompt.
//
// voice is a domain package: it imports no adapter (no SIP, store, HTTP or config library).
package voice
