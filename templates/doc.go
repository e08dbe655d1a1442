// Package templates writes the text a verification sends: one Go text/template per channel and locale,
// the app's own (apps' `templates`) before the built-in ones, with the data Data holds (.Code, .App,
// .Minutes).
//
// Render picks the template by the send's locale (BCP 47, matched with golang.org/x/text/language), falling
// back to the app's locale, then to en; AndroidHash puts an app's Android SMS Retriever hash under an SMS.
// Check is what apps runs on every template it stores: a template must parse, use no fields but Code, App
// and Minutes, no range, template or define, and print the code, or it is refused.
//
// Invariants: every built-in template passes Check; Render never returns a text without the code, since
// only checked templates reach it (it checks again a text it has not seen before, so an unchecked one is an
// error, never a message without the code). Parsed templates are cached by their text: a send parses
// nothing it has parsed before.
//
// templates imports nothing of the engine's.
package templates
