"""Saying values from recorded fragments (firmware/prompts/texts.yaml): digits, numbers, dates, queue
position and wait time, in Mandarin (cmn) and English (en). Each function returns fragment names."""

from __future__ import annotations

from datetime import date


def say_digits(value: str) -> list[str]:
    out = []
    for ch in str(value):
        if ch.isdigit():
            out.append(f"digit_{ch}")
        elif ch == "*":
            out.append("star")
        elif ch == "#":
            out.append("pound")
    return out


def _cmn_below_10000(n: int, leading: bool) -> list[str]:
    out: list[str] = []
    units = [(1000, "thousand"), (100, "hundred"), (10, None)]
    zero_pending = False
    started = False
    for div, unit in units:
        d = n // div % 10
        if d == 0:
            if started or not leading:
                zero_pending = True
            continue
        if zero_pending and (started or not leading):
            out.append("digit_0")
        zero_pending = False
        if div == 10:
            # 十 / 十五 at the start of a number, 一十 inside one (一百一十)
            out.append(f"n{d * 10}" if d > 1 else ("n10" if not started and leading else "digit_1"))
            if d == 1 and (started or not leading):
                out.append("n10")
        else:
            out += [f"digit_{d}", unit or ""]
        started = True
    d = n % 10
    if d:
        if zero_pending and (started or not leading):
            out.append("digit_0")
        if out and out[-1] in {f"n{k}" for k in range(10, 100, 10)}:
            tens = out.pop()
            out.append(f"n{int(tens[1:]) + d}" if tens == "n10" else tens)
            if tens != "n10":
                out.append(f"digit_{d}")
        else:
            out.append(f"digit_{d}")
    return out


def say_number_cmn(n: int) -> list[str]:
    if n == 0:
        return ["digit_0"]
    out: list[str] = []
    if n < 0:
        n = -n
    yi, rest = divmod(n, 100_000_000)
    wan, low = divmod(rest, 10_000)
    if yi:
        out += say_number_cmn(yi) + ["yi"]
    if wan:
        part = _cmn_below_10000(wan, leading=not out)
        if out and wan < 1000:
            part = ["digit_0", *part] if part[0] != "digit_0" else part
        out += part + ["wan"]
    elif out and low:
        out.append("digit_0")
    if low:
        part = _cmn_below_10000(low, leading=not out)
        if out and low < 1000 and (not part or part[0] != "digit_0"):
            part = ["digit_0", *part]
        out += part
    return out


def _en_below_1000(n: int) -> list[str]:
    out: list[str] = []
    h, r = divmod(n, 100)
    if h:
        out += [f"digit_{h}", "hundred"]
    if 10 <= r < 20:
        out.append(f"n{r}")
    else:
        t, u = divmod(r, 10)
        if t:
            out.append(f"n{t * 10}")
        if u:
            out.append(f"digit_{u}")
    return out


def say_number_en(n: int) -> list[str]:
    if n == 0:
        return ["digit_0"]
    out: list[str] = []
    for div, word in ((1_000_000, "million"), (1000, "thousand")):
        if n >= div:
            out += say_number_en(n // div) + [word]
            n %= div
    return out + _en_below_1000(n)


def say_number(value: str | float | int, lang: str) -> list[str]:
    s = str(value).strip()
    neg = s.startswith("-")
    whole, _, frac = s.lstrip("-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return say_digits(s)
    n = int(whole)
    out = say_number_cmn(n) if lang == "cmn" else say_number_en(n)
    frac = frac.rstrip("0")
    if frac:
        out += ["point", *say_digits(frac)]
    return (["minus"] if neg else []) + out


def say_date(value: str | date, lang: str) -> list[str]:
    d = value if isinstance(value, date) else date.fromisoformat(str(value))
    if lang == "cmn":
        return [
            *say_digits(str(d.year)),
            "year",
            *say_number_cmn(d.month),
            "month",
            *say_number_cmn(d.day),
            "day",
        ]
    return [f"month_{d.month}", *say_number_en(d.day), *say_number_en(d.year)]


def say_queue_position(n: int, lang: str) -> list[str]:
    num = say_number_cmn(n) if lang == "cmn" else say_number_en(n)
    return ["you_are_number", *num, "in_queue"]


def say_wait_time(seconds: float, lang: str) -> list[str]:
    minutes = max(1, int(round(float(seconds) / 60)))
    num = say_number_cmn(minutes) if lang == "cmn" else say_number_en(minutes)
    return ["wait_about", *num, "minutes"]


def fragments(kind: str, value: object, lang: str) -> list[str]:
    if kind == "digits":
        return say_digits(str(value))
    if kind == "number":
        return say_number(str(value), lang)
    if kind == "date":
        return say_date(str(value), lang)
    if kind == "queue_position":
        return say_queue_position(int(value), lang)  # type: ignore[call-overload]
    if kind == "wait_time":
        return say_wait_time(float(value), lang)  # type: ignore[arg-type]
    raise ValueError(f"cannot say {kind!r}")
