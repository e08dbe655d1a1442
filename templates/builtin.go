package templates

// Channels with text templates. Voice speaks recorded prompts and flash calls carry no text: neither has
// templates.
const (
	ChannelSMS      = "sms"
	ChannelEmail    = "email" // its text body; KeyEmailSubject and KeyEmailHTML key its other parts
	ChannelWhatsApp = "whatsapp"
)

// DefaultLocale is the locale every channel with built-in templates has, the last fallback of Render.
const DefaultLocale = "en"

// builtin holds the templates shipped with the engine: channel → locale → text.
//
// SMS: the code comes first, so that it shows on a lock screen's preview. en, fr and de keep to the GSM
// 03.38 alphabet, so one 160-character segment holds them with an app name and an Android hash; es and pt
// need UCS-2 for their accents (70 characters a segment) and hi needs it for Devanagari, so they are kept
// short enough for one segment with a short app name and the hash (templates_test measures every one).
var builtin = map[string]map[string]string{
	ChannelSMS: {
		"en": `{{.Code}} is your {{.App}} verification code. It expires in {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		"es": `{{.Code}} es tu código de {{.App}}. Caduca en {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		"pt": `{{.Code}} é o seu código {{.App}}. Expira em {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		"fr": `{{.Code}} est votre code de vérification {{.App}}. Il expire dans {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		"de": `{{.Code}} ist Ihr {{.App}} Bestätigungscode. Er ist {{.Minutes}} {{if eq .Minutes 1}}Minute{{else}}Minuten{{end}} gültig.`,
		"hi": `{{.Code}} आपका {{.App}} OTP है। यह {{.Minutes}} मिनट तक मान्य है।`,
	},
	// WhatsApp: what the user reads is Meta's own authentication template in its language; this text is
	// the step's fallback and preview, worded like that template (the code, do not share it, expiry).
	ChannelWhatsApp: {
		"en": `{{.Code}} is your {{.App}} verification code. For your security, do not share this code. It expires in {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		"es": `{{.Code}} es tu código de verificación de {{.App}}. Por tu seguridad, no lo compartas. Caduca en {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		"pt": `{{.Code}} é o seu código de verificação {{.App}}. Para sua segurança, não o compartilhe. Expira em {{.Minutes}} {{if eq .Minutes 1}}minuto{{else}}minutos{{end}}.`,
		"fr": `{{.Code}} est votre code de vérification {{.App}}. Pour votre sécurité, ne le partagez pas. Il expire dans {{.Minutes}} {{if eq .Minutes 1}}minute{{else}}minutes{{end}}.`,
		"de": `{{.Code}} ist Ihr {{.App}} Bestätigungscode. Geben Sie ihn zu Ihrer Sicherheit nicht weiter. Er ist {{.Minutes}} {{if eq .Minutes 1}}Minute{{else}}Minuten{{end}} gültig.`,
		"hi": `{{.Code}} आपका {{.App}} सत्यापन कोड है। अपनी सुरक्षा के लिए इसे किसी से साझा न करें। यह {{.Minutes}} मिनट तक मान्य है।`,
	},
}
