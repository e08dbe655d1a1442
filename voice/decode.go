package voice

import (
	"cmp"
	"errors"
	"math"
	"slices"

	"github.com/zaf/g711"
)

// ErrNotHeard is returned by Decode for audio in which no code could be told apart: no speech, speech of
// another library, or too much of it lost.
var ErrNotHeard = errors.New("voice: no code heard")

// mulawToLinear is G.711 mu-law decoding as a table.
var mulawToLinear = func() (t [256]int16) {
	for i := range t {
		t[i] = g711.DecodeUlawFrame(uint8(i))
	}
	return t
}()

// Decoding works at half the prompts' rate: speech keeps what tells the clips apart below 2 kHz, and every
// correlation costs a quarter.
const (
	decodeRate  = SampleRate / 2
	frame       = decodeRate / 100 // 10 ms: the step of the speech detector and of the envelopes
	mergeFrames = 15               // a pause shorter than 150 ms is within a clip (250 ms part digits)
	minFrames   = 5                // speech shorter than 50 ms is a click
	// envSlack is how far (in frames) a clip's envelope is moved about where the detector's start puts it:
	// the detector's threshold follows the loudest sound, so a clip's start shifts with what surrounds it.
	envSlack = 12
	// fineSlack is how far (in samples) the waveform is moved about where the envelopes put it.
	fineSlack  = frame + 4
	candidates = 4   // the clips whose envelopes fit best are compared sample by sample
	minScore   = 0.5 // the least correlation a clip must reach to be heard
)

// ref is one clip as Decode matches it.
type ref struct {
	name string
	// x is the clip at decodeRate, twice: from its first sample and from its second. Audio that holds it
	// at an odd offset pairs its samples the other way, so only the second matches there.
	x      [2][]float32
	energy [2]float64
	env    []float64 // the level of each frame of x
	envE   float64   // the envelope's energy
	start  int       // the frame where the detector finds its speech begin
	length int       // frames from there to its end
}

// decodeRefs returns Decode's references of every locale, made once.
func (l *Library) decodeRefs() map[string]map[string]*ref {
	l.decodeOnce.Do(func() {
		l.refs = map[string]map[string]*ref{}
		for loc, set := range l.clips {
			m := map[string]*ref{}
			for name, b := range set {
				pcm := ulawPCM(b)
				x := halve(pcm)
				env := envelope(x)
				r := &ref{name: name, x: [2][]float32{x, halve(pcm[1:])}, env: env, length: len(env)}
				r.energy = [2]float64{energy(r.x[0]), energy(r.x[1])}
				for _, v := range env {
					r.envE += v * v
				}
				if segs := speech(env); len(segs) > 0 {
					r.start, r.length = segs[0].start, segs[len(segs)-1].end-segs[0].start
				}
				m[name] = r
			}
			l.refs[loc] = m
		}
	})
	return l.refs
}

// Decode returns the code spoken in audio, 8 kHz G.711 mu-law as Prompt makes it (a PCMA call's audio
// turned to mu-law will do): the digits that follow an intro or an "again", the run heard most often.
// It knows the clips of l only.
func (l *Library) Decode(audio []byte) (string, error) { return l.DecodePCM(ulawPCM(audio)) }

// DecodePCM is Decode for 8 kHz 16-bit linear samples (PCMA or PCMU already decoded).
func (l *Library) DecodePCM(pcm []int16) (string, error) {
	x := halve(pcm)
	a := &audio{x: x, win: prefixEnergy(x), env: envelope(x)}
	a.envWin = prefixSquares(a.env)
	segs := speech(a.env)
	if len(segs) == 0 {
		return "", ErrNotHeard
	}
	// The locale is the one whose clips match best, summed over the whole prompt: first by envelopes alone,
	// then sample by sample in the locales whose envelopes fit best.
	refs := l.decodeRefs()
	locales := slices.Clone(l.locales)
	fit := map[string]float64{}
	for _, loc := range locales {
		fit[loc] = envelopeFit(a, segs, refs[loc])
	}
	slices.SortStableFunc(locales, func(p, q string) int { return cmp.Compare(fit[q], fit[p]) })
	bestTotal := -1.0
	var bestLabels []string
	for _, loc := range locales[:min(len(locales), 2)] {
		labels, total := classify(a, segs, refs[loc])
		if total > bestTotal {
			bestTotal, bestLabels = total, labels
		}
		if !slices.Contains(labels, "") {
			break // every segment heard: no other locale can do better
		}
	}
	code := mostHeard(bestLabels)
	if code == "" {
		return "", ErrNotHeard
	}
	return code, nil
}

// audio is the received audio as Decode matches it.
type audio struct {
	x      []float32
	win    []float64 // win[i]: the energy of x[:i]
	env    []float64 // the level of each frame of x
	envWin []float64 // envWin[i]: the energy of env[:i]
}

// classify names each segment by the clip of refs it matches best ("" for none), and sums the scores.
// Envelopes first: each clip of about the segment's length is placed where its envelope fits best, and the
// few that fit best are then compared sample by sample.
func classify(a *audio, segs []segment, refs map[string]*ref) ([]string, float64) {
	labels := make([]string, len(segs))
	var total float64
	type fit struct {
		r     *ref
		at    int // frame
		score float64
	}
	for i, s := range segs {
		var fits []fit
		for _, r := range refs {
			if !lengthFits(s, r) {
				continue
			}
			at, sc := fitEnvelope(a, s, r)
			fits = append(fits, fit{r, at, sc})
		}
		slices.SortFunc(fits, func(p, q fit) int { return cmp.Compare(q.score, p.score) })
		segEnergy := a.win[s.end*frame] - a.win[s.start*frame]
		bestScore := minScore
		for _, f := range fits[:min(len(fits), candidates)] {
			if sc := score(a, segEnergy, f.at*frame, f.r); sc > bestScore {
				bestScore, labels[i] = sc, f.r.name
			}
		}
		if labels[i] != "" {
			total += bestScore
		}
	}
	return labels, total
}

// envelopeFit sums, over the segments, how well the best-fitting envelope of refs fits each.
func envelopeFit(a *audio, segs []segment, refs map[string]*ref) float64 {
	var total float64
	for _, s := range segs {
		best := 0.0
		for _, r := range refs {
			if lengthFits(s, r) {
				_, sc := fitEnvelope(a, s, r)
				best = max(best, sc)
			}
		}
		total += best
	}
	return total
}

// lengthFits reports whether segment s is about as long as r's speech.
func lengthFits(s segment, r *ref) bool {
	return math.Abs(float64(s.end-s.start-r.length)) <= 0.3*float64(r.length)+4
}

// fitEnvelope returns the frame where r's envelope fits the audio's best, near the segment's start, and how
// well (normalized, as score).
func fitEnvelope(a *audio, s segment, r *ref) (int, float64) {
	segE := a.envWin[s.end] - a.envWin[s.start]
	best, bestAt := -1.0, 0
	for at := s.start - r.start - envSlack; at <= s.start-r.start+envSlack; at++ {
		var dot float64
		lo, hi := max(0, -at), min(len(r.env), len(a.env)-at)
		for j := lo; j < hi; j++ {
			dot += a.env[at+j] * r.env[j]
		}
		e := a.envWin[clamp(at+len(r.env), len(a.env))] - a.envWin[clamp(at, len(a.env))]
		if v := dot / math.Sqrt(r.envE*max(e, segE)+1e-9); v > best {
			best, bestAt = v, at
		}
	}
	return bestAt, best
}

// score is the largest normalized cross-correlation of r's clip with the audio placed at around at
// (±fineSlack samples): the dot product over the root of both energies, the audio's taken over the clip's
// window or the detected speech, whichever holds more, so that a short clip matching part of a longer word
// scores low.
func score(a *audio, segEnergy float64, at int, r *ref) float64 {
	x := a.x
	best := -1.0
	for phase, rx := range r.x {
		for p := at - fineSlack; p <= at+fineSlack; p++ {
			var sum float32
			lo, hi := max(0, -p), min(len(rx), len(x)-p)
			for i := lo; i < hi; i++ {
				sum += x[p+i] * rx[i]
			}
			e := a.win[clamp(p+len(rx), len(x))] - a.win[clamp(p, len(x))]
			best = max(best, float64(sum)/math.Sqrt(r.energy[phase]*max(e, segEnergy)+1e-9))
		}
	}
	return best
}

func clamp(i, n int) int { return max(0, min(n, i)) }

// mostHeard returns the digits run heard most often in labels: the digits after each intro or again, a
// run with an unknown segment left out.
func mostHeard(labels []string) string {
	count := map[string]int{}
	var order []string
	run, broken := "", false
	flush := func() {
		if run != "" && !broken {
			if count[run] == 0 {
				order = append(order, run)
			}
			count[run]++
		}
		run, broken = "", false
	}
	for _, lb := range labels {
		switch lb {
		case Intro, Again:
			flush()
		case "":
			broken = true
		default:
			run += lb
		}
	}
	flush()
	best := ""
	for _, r := range order {
		if count[r] > count[best] {
			best = r
		}
	}
	return best
}

// segment is a stretch of speech, in frames: [start, end).
type segment struct{ start, end int }

// speech finds the stretches of frames (levels, as envelope gives them) louder than a twentieth of the
// loudest (and not near silence), pauses under 150 ms joined.
func speech(env []float64) []segment {
	var peak float64
	for _, v := range env {
		peak = max(peak, v)
	}
	thr := max(0.05*peak, 60)
	var segs []segment
	for i := 0; i < len(env); {
		if env[i] < thr {
			i++
			continue
		}
		j := i
		for j < len(env) && env[j] >= thr {
			j++
		}
		if k := len(segs) - 1; k >= 0 && i-segs[k].end < mergeFrames {
			segs[k].end = j
		} else {
			segs = append(segs, segment{i, j})
		}
		i = j
	}
	out := segs[:0]
	for _, s := range segs {
		if s.end-s.start >= minFrames {
			out = append(out, s)
		}
	}
	return out
}

// envelope returns the level (root mean square) of each whole 10 ms frame of x.
func envelope(x []float32) []float64 {
	env := make([]float64, len(x)/frame)
	for i := range env {
		env[i] = math.Sqrt(energy(x[i*frame:(i+1)*frame]) / frame)
	}
	return env
}

func ulawPCM(b []byte) []int16 {
	pcm := make([]int16, len(b))
	for i, s := range b {
		pcm[i] = mulawToLinear[s]
	}
	return pcm
}

// halve averages pairs of samples: a crude low-pass and half the rate.
func halve(pcm []int16) []float32 {
	x := make([]float32, len(pcm)/2)
	for i := range x {
		x[i] = (float32(pcm[2*i]) + float32(pcm[2*i+1])) / 2
	}
	return x
}

func energy(x []float32) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return e
}

// prefixSquares returns w with w[i] the sum of the squares of v[:i].
func prefixSquares(v []float64) []float64 {
	w := make([]float64, len(v)+1)
	for i, x := range v {
		w[i+1] = w[i] + x*x
	}
	return w
}

// prefixEnergy returns w with w[i] the energy of x[:i].
func prefixEnergy(x []float32) []float64 {
	w := make([]float64, len(x)+1)
	for i, v := range x {
		w[i+1] = w[i] + float64(v)*float64(v)
	}
	return w
}
