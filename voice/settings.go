package voice

import (
	"regexp"
	"time"

	"flashotp/setting"
)

// Settings are the voice channel's, the config file's voice section.
type Settings struct {
	// CallerID is the number the voice call comes from, in E.164 ("+442079460000"); empty: a number of the
	// app's pool.
	CallerID string `mapstructure:"caller_id"`
	// AnswerTimeout is the longest wait for the answer once the phone rings.
	AnswerTimeout time.Duration `mapstructure:"answer_timeout"`
	// Repeat is how many times a DTMF 1 from the callee may replay the prompt.
	Repeat int `mapstructure:"repeat"`
	// PromptsDir, when set, holds the operator's recordings (<locale>/<name>.ul, as Load wants them)
	// instead of the built-in prompts.
	PromptsDir string `mapstructure:"prompts_dir"`
}

// DefaultSettings are the settings of a voice section that sets none.
var DefaultSettings = Settings{AnswerTimeout: 30 * time.Second, Repeat: 2}

// Limits of the voice settings, as Validate enforces them.
const (
	MinAnswerTimeout = time.Second
	MaxAnswerTimeout = 2 * time.Minute
	MaxRepeat        = 5
)

var e164Re = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// Validate reports every bad key of s, each a *setting.Error ("repeat: want 0..5, got 9"). A prompts_dir
// is loaded whole, so that a missing or broken recording stops the start, not a call.
func (s Settings) Validate() error {
	var errs setting.Errors
	bad := errs.Add
	if s.CallerID != "" && !e164Re.MatchString(s.CallerID) {
		bad("caller_id", "want a number in E.164 (+ and 2..15 digits) or empty, got %q", s.CallerID)
	}
	if s.AnswerTimeout < MinAnswerTimeout || s.AnswerTimeout > MaxAnswerTimeout {
		bad("answer_timeout", "want %s..%s, got %s", MinAnswerTimeout, MaxAnswerTimeout, s.AnswerTimeout)
	}
	if s.Repeat < 0 || s.Repeat > MaxRepeat {
		bad("repeat", "want 0..%d, got %d", MaxRepeat, s.Repeat)
	}
	if s.PromptsDir != "" {
		if _, err := LoadDir(s.PromptsDir); err != nil {
			bad("prompts_dir", "%v", err)
		}
	}
	return errs.Err()
}

// Library returns the prompts s names: the operator's in PromptsDir, else the built-in ones.
func (s Settings) Library() (*Library, error) {
	if s.PromptsDir != "" {
		return LoadDir(s.PromptsDir)
	}
	return Builtin(), nil
}
