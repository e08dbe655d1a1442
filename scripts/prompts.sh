#!/usr/bin/env bash
# Makes the voice channel's built-in prompts, voice/prompts/<locale>/{0..9,intro,again}.ul, from text with
# espeak-ng and sox (Debian: espeak-ng, sox): 8 kHz mono G.711 mu-law, raw, silence trimmed at both ends and
# the level normalized, so that voice.Library can join them with silences of its own. The outputs are
# committed: the binary embeds them and needs neither tool at run time. Run it again after changing a text;
# the same espeak-ng and sox make the same files. An operator's own recordings go in voice.prompts_dir, in
# the same layout (docs/channels.md).
set -euo pipefail
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: install the Debian packages espeak-ng sox" >&2; exit 1; }
done
out="$(cd "$(dirname "$0")/.." && pwd)/voice/prompts"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# locale | espeak-ng voice | zero..nine | intro | again
while IFS='|' read -r locale v digits intro again; do
  [ -n "$locale" ] || continue
  mkdir -p "$out/$locale"
  read -r -a words <<<"$digits"
  [ "${#words[@]}" -eq 10 ] || { echo "$locale: want 10 digit words, got ${#words[@]}" >&2; exit 1; }
  names=(0 1 2 3 4 5 6 7 8 9 intro again)
  texts=("${words[@]}" "$intro" "$again")
  for i in "${!names[@]}"; do
    text="${texts[$i]//_/ }"
    espeak-ng -v "$v" -s 150 -w "$tmp/x.wav" "$text"
    # To 8 kHz mono (-D -R: no dither, so the same text makes the same bytes), level to -3 dBFS, trim the silence before and after (espeak-ng pads both ends).
    sox -D -R "$tmp/x.wav" -r 8000 -c 1 -e mu-law -t ul "$out/$locale/${names[$i]}.ul" \
      norm -3 silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse
  done
done <<'LIST'
en|en-us|zero one two three four five six seven eight nine|Your verification code is|Again:
es|es|cero uno dos tres cuatro cinco seis siete ocho nueve|Su código de verificación es|Repito:
pt|pt-br|zero um dois três quatro cinco seis sete oito nove|Seu código de verificação é|Repetindo:
fr|fr-fr|zéro un deux trois quatre cinq six sept huit neuf|Votre code de vérification est|Je répète :
de|de|null eins zwei drei vier fünf sechs sieben acht neun|Ihr Bestätigungscode lautet|Noch einmal:
hi|hi|शून्य एक दो तीन चार पाँच छह सात आठ नौ|आपका सत्यापन कोड है|फिर से:
LIST
du -sh "$out"
