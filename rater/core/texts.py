"""What the teacher's screens say, in Swedish and English (the instructions' two languages), in one catalog that the
terminal screen and the web page share. A teacher picks the language (`--lang`, or RATER_LANG); the default comes
from the locale (sv_* gives Swedish), else English. The line that says what a tick means is always in both."""

import locale
import os

LANGUAGES = ("sv", "en")
TICK_MEANING = "Bocka godtagbara distraktorer / tick acceptable ones"  # fits the smallest screen

CATALOG: dict[str, dict[str, str]] = {
    "correct_answer": {"sv": "Rätt svar", "en": "Correct answer"},
    "question": {"sv": "Fråga", "en": "Question"},
    "tick": {"sv": "Bocka", "en": "Tick"},
    "save": {"sv": "Spara", "en": "Save"},
    "space_key": {"sv": "mellanslag", "en": "space"},
    "back": {"sv": "Tillbaka", "en": "Back"},
    "skip": {"sv": "Hoppa över", "en": "Skip"},
    "reason": {"sv": "Orsak", "en": "Reason"},
    "page": {"sv": "Sida", "en": "Page"},
    "context": {"sv": "Text", "en": "Text"},
    "whole_text": {"sv": "c: hela texten", "en": "c: the whole text"},
    "option_marks": {"sv": "[{mark}]: alternativ {mark} står här i texten",
                     "en": "[{mark}]: option {mark} occurs here in the text"},
    "help": {"sv": "Hjälp", "en": "Help"},
    "history": {"sv": "Historik", "en": "History"},
    "flag": {"sv": "Flagga", "en": "Flag"},
    "leave": {"sv": "Avsluta", "en": "Leave"},
    "close": {"sv": "Stäng", "en": "Close"},
    "cancel": {"sv": "Avbryt", "en": "Cancel"},
    "open": {"sv": "Öppna", "en": "Open"},
    "mode_preference": {"sv": "bedömning av distraktorer", "en": "rating distractors"},
    "mode_blind": {"sv": "blind utvärdering", "en": "blind evaluation"},
    "accepted_so_far": {"sv": "du har godtagit {share} hittills", "en": "you accepted {share} so far"},
    "nothing_rated": {"sv": "inget bedömt än", "en": "nothing rated yet"},
    "skipped": {"sv": "{n} överhoppade, de kommer igen i slutet", "en": "{n} skipped, they come back at the end"},
    "by_uncertainty": {"sv": "ordnat efter domarnas osäkerhet", "en": "ordered by the judges' uncertainty"},
    "no_judge": {"sv": "ingen domare har bedömt detta objekt", "en": "no judge has rated this item"},
    "uncertain_none": {"sv": "ingen domare har bedömt något än, så objekten kommer i sparad ordning, inte efter "
                             "osäkerhet",
                       "en": "no judge has rated anything yet, so the items come in the stored order, not by "
                             "uncertainty"},
    "page_of": {"sv": "sida {page}/{pages} (→ ← för andra sidan)", "en": "page {page}/{pages} (→ ← for the other page)"},
    "reviewing": {"sv": "du granskar din bedömning nr {n}", "en": "reviewing your rating no. {n}"},
    "saving": {"sv": "sparar…", "en": "saving…"},
    "you_rated": {"sv": "du har bedömt {n}", "en": "you rated {n}"},
    "study_needs": {"sv": "{n} objekt behöver fler bedömningar", "en": "{n} items still need ratings",
                    "en_one": "1 item still needs ratings"},
    "more_below": {"sv": "▼ fler alternativ nedanför: rulla ned (↓)", "en": "▼ more options below: scroll down (↓)"},
    "new_option": {"sv": "ny", "en": "new"},
    "too_small": {"sv": "Terminalen är för liten för bedömning.\nGör den minst {width} x {height} tecken.",
                  "en": "The terminal is too small for rating.\nMake it at least {width} x {height} characters."},
    "not_seen": {"sv": "Alternativ {numbers} har inte visats än: rulla ned eller byt sida (→) innan du sparar.",
                 "en": "Not shown yet: options {numbers}. Scroll down or turn the page (→) before saving.",
                 "en_one": "Not shown yet: option {numbers}. Scroll down or turn the page (→) before saving."},
    "tick_unseen": {"sv": "Alternativ {number} syns inte helt än: rulla ned (↓) och läs det först.",
                    "en": "Option {number} is not fully in view yet: scroll down (↓) and read it first."},
    "no_option": {"sv": "Det finns inget alternativ {number} här.", "en": "There is no option {number} here."},
    "just_shown": {"sv": "Objektet visades nyss: titta på det och tryck igen.",
                   "en": "This item was just shown: look at it, then press again."},
    "first_item": {"sv": "Det finns ingen tidigare bedömning att gå tillbaka till.",
                   "en": "There is no earlier rating to go back to."},
    "reason_prompt": {"sv": "Tryck numret på distraktorn som ska få en orsak (Esc avbryter).",
                      "en": "Press the number of the distractor to give a rejection reason (Esc cancels)."},
    "reason_title": {"sv": "Varför underkänns distraktor {number}?", "en": "Why is distractor {number} rejected?"},
    "reason_other": {"sv": "Annan (skriv den)", "en": "Other (type it)"},
    "reason_input": {"sv": "Din egen orsak, sedan Enter", "en": "Your own reason, then Enter"},
    "not_saved": {"sv": "Kunde inte spara: {error} Dina bockar finns kvar; tryck mellanslag för att försöka igen.",
                  "en": "Could not save: {error} Your ticks are kept; press space to try again."},
    "overtaken": {"sv": "Ett annat fönster sparade det här objektet medan det visades här. Det svaret visas nu: "
                        "mellanslag sparar det som det står (ändra först om du vill), s går vidare.",
                  "en": "Another window saved this item while it was shown here. Its answer is shown now: space "
                        "saves it as shown (change it first if you like), s moves on."},
    "beyond_k": {"sv": "Andra lärare hann bedöma objektet, eller tog över det, medan det låg öppet här: din "
                       "bedömning är sparad men markerad som utöver K.",
                 "en": "Other teachers rated this item, or took it over, while it was open here: your rating is kept, "
                       "marked as beyond K."},
    "screen_looks_again": {"sv": "Skärmen tittar efter igen var {seconds}:e sekund: ett objekt som en annan lärare "
                                 "släpper kommer hit.",
                           "en": "This screen looks again every {seconds} seconds: an item another teacher lets go "
                                 "comes here."},
    "study_done": {"sv": "Studien är klar: varje objekt har {n} lärares bedömningar.",
                   "en": "The study is done: every item has {n} teachers' ratings.",
                   "en_one": "The study is done: every item has a teacher's rating."},
    "rated_but_left": {"sv": "{rated} objekt är bedömda; {left} har du hoppat över två gånger och de är inte bedömda.",
                       "en": "{rated} items are rated; {left} you skipped twice are not rated yet."},
    "all_rated": {"sv": "Alla {total} objekt är bedömda.", "en": "All {total} items are rated."},
    "nothing_left": {"sv": "Inget är kvar åt dig. Varje annat objekt har redan sina {n} lärares bedömningar, eller är "
                           "öppet hos en annan lärare.",
                     "en": "Nothing is left for you. Every other item already has its {n} teachers' ratings, or "
                           "another teacher has it open.",
                     "en_one": "Nothing is left for you. Every other item already has a teacher's rating, or another "
                               "teacher has it open."},
    "session": {"sv": "Den här gången: {items} objekt, {judgements} distraktorer, {share} godtagna.",
                "en": "This session: {items} items, {judgements} distractors, {share} accepted."},
    "farewell": {"sv": "Sparat den här gången: {n} objekt ({judgements} distraktorer). Allt du sparat finns kvar; "
                       "starta igen för att fortsätta där du slutade.",
                 "en": "Saved this time: {n} items ({judgements} distractors). Everything you saved is kept; "
                       "start again to go on where you stopped.",
                 "en_one": "Saved this time: 1 item ({judgements} distractors). Everything you saved is kept; "
                           "start again to go on where you stopped."},
    "all_saved": {"sv": "Allt är sparat. Esc avslutar, Backspace går tillbaka, h visar din historik.",
                  "en": "Every rating is saved. Esc leaves, Backspace goes back, h shows your history."},
    "left_skipped": {"sv": "Överhoppade två gånger ({n}): välj ett för att öppna det.",
                     "en": "Skipped twice ({n}): choose one to open it."},
    "history_title": {"sv": "Dina bedömningar, senaste först", "en": "Your ratings, latest first"},
    "history_filter": {"sv": "Filtrera på text…", "en": "Filter by text…"},
    "history_empty": {"sv": "Inga bedömningar än.", "en": "No ratings yet."},
    "history_row": {"sv": "{when}  {accepted}/{rated} godtagna  {question}",
                    "en": "{when}  {accepted}/{rated} accepted  {question}"},
    "instructions_first": {"sv": "Läs instruktionerna (?) innan du börjar.",
                           "en": "Read the instructions (?) before you start."},
    "flag_prompt": {"sv": "Vad är fel med objektet? (valfritt, sedan Enter; Esc avbryter)",
                    "en": "What is wrong with this item? (optional, then Enter; Esc cancels)"},
    "flagged": {"sv": "Objektet är flaggat för den som leder studien.", "en": "The item is flagged for the organizer."},
}


REASON_LABELS: dict[str, dict[str, str]] = {  # the five rejection reasons (Kalpakchi & Boye), by stored value
    "not_wrong": {"sv": "Inte fel (också ett rätt svar)", "en": "Not wrong (also a correct answer)"},
    "unreasonable": {"sv": "Orimlig", "en": "Unreasonable"},
    "grammatically_wrong": {"sv": "Grammatiskt fel", "en": "Grammatically wrong"},
    "identical": {"sv": "Identisk med svaret", "en": "Identical to the answer"},
    "obviously_wrong": {"sv": "Uppenbart fel", "en": "Obviously wrong"},
}


def default_language() -> str:
    """RATER_LANG when it names a language we have, else the locale's (sv_* gives Swedish), else English."""
    asked = os.environ.get("RATER_LANG", "").strip().lower()[:2]
    if asked in LANGUAGES:
        return asked
    found = (locale.getlocale()[0] or os.environ.get("LANG", "") or "").lower()
    return "sv" if found.startswith("sv") else "en"


class Texts:
    """The catalog in one language: `texts.say("skipped", n=3)`."""

    def __init__(self, language: str | None = None) -> None:
        self.language = language if language in LANGUAGES else default_language()

    def say(self, key: str, **values: object) -> str:
        return self.fill(CATALOG[key], **values)

    def fill(self, entry: dict[str, str], **values: object) -> str:
        """An entry's text in this language; where it has a singular form ("en_one"), that one when n is 1."""
        return entry.get(f"{self.language}_one" if values.get("n") == 1 else "", entry[self.language]).format(**values)

    def reason(self, reason: str | None) -> str:
        """A stored rejection reason as the teacher reads it: one of the five in this language, or their words."""
        if not reason:
            return ""
        return REASON_LABELS[reason][self.language] if reason in REASON_LABELS else reason
