"""Synthetic bank statements with ground truth, and the parser the simulator reads them with.

Three layouts, transaction tables that run across page breaks, and OCR-like noise on a chosen
share of the non-data lines. Everything is a function of the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from streamer.events import PageEvent

BANKS = ["Northwind Bank", "Contoso Savings", "First Fabrikam", "Tailspin Credit Union", "Woodgrove Bank"]
NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson"]
MERCHANTS = [
    "GROCERY MART",
    "CITY TRANSIT",
    "COFFEE HOUSE",
    "ONLINE BOOKS",
    "PHARMACY",
    "SALARY ACME CORP",
    "ELECTRIC UTILITY",
    "RENT PAYMENT",
    "RESTAURANT",
    "ATM WITHDRAWAL",
]
FILLER = [
    "Thank you for banking with us.",
    "Customer service is available 24 hours a day.",
    "Please check this statement and report any discrepancy within 30 days.",
    "Deposits are protected up to the statutory limit.",
    "Visit our website to go paperless and save the planet.",
    "Interest rates are subject to change without notice.",
]
LAYOUTS = ("classic", "ledger", "compact")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class Transaction:
    date: date
    description: str
    amount_cents: int
    balance_cents: int | None


@dataclass
class Account:
    """One account of one document, its pages and what a perfect extraction returns."""

    document_id: str
    account_number: str
    bank_name: str
    account_holder: str
    currency: str
    period_start: date
    period_end: date
    opening_cents: int
    layout: str
    transactions: list[Transaction]
    pages: list[str] = field(default_factory=list)
    first_document_page: int = 1

    @property
    def closing_cents(self) -> int:
        return self.opening_cents + sum(t.amount_cents for t in self.transactions)

    def expected_fields(self) -> dict[str, Any]:
        """The merged record's `fields` a correct pipeline must publish."""
        return {
            "bank_name": self.bank_name,
            "account_holder": self.account_holder,
            "account_number": self.account_number,
            "currency": self.currency,
            "statement_period_start": self.period_start.isoformat(),
            "statement_period_end": self.period_end.isoformat(),
            "opening_balance": self.opening_cents / 100,
            "closing_balance": self.closing_cents / 100,
            "transactions": [
                {
                    "date": t.date.isoformat(),
                    "description": t.description,
                    "amount": t.amount_cents / 100,
                    "balance": None if t.balance_cents is None else t.balance_cents / 100,
                }
                for t in self.transactions
            ],
        }

    def events(self) -> list[PageEvent]:
        n = len(self.pages)
        return [
            PageEvent(
                document_id=self.document_id,
                account_number=self.account_number,
                page_index=i + 1,
                page_count=n,
                text=text,
                document_page=self.first_document_page + i,
            )
            for i, text in enumerate(self.pages)
        ]


def _money(cents: int, layout: str) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    if layout == "classic":
        return f"{sign}{whole:,}.{frac:02d}"
    if layout == "ledger":
        return f"{whole:,}.{frac:02d} {'DR' if cents < 0 else 'CR'}"
    return f"{whole}.{frac:02d}{'-' if cents < 0 else '+'}"


def _balance(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}"


def _date(d: date, layout: str) -> str:
    if layout == "classic":
        return d.isoformat()
    if layout == "ledger":
        return d.strftime("%d/%m/%Y")
    return f"{d.day:02d} {MONTHS[d.month - 1]} {d.year}"


def _noisy(line: str, rng: random.Random) -> str:
    """OCR-like damage: look-alike characters, dropped letters, doubled spaces."""
    swaps = {"o": "0", "l": "1", "e": "c", "m": "rn", "S": "5", "a": "@", "i": "!"}
    out = []
    for ch in line:
        r = rng.random()
        if ch in swaps and r < 0.25:
            out.append(swaps[ch])
        elif ch.isalpha() and r < 0.3:
            continue
        elif ch == " " and r < 0.4:
            out.append("  ")
        else:
            out.append(ch)
    return "".join(out)


def _header(a: Account, page: int, total: int) -> list[str]:
    if a.layout == "classic":
        lines = [f"{a.bank_name} - Account Statement", f"Account number: {a.account_number}"]
        if page == 1:
            lines += [
                f"Account holder: {a.account_holder}",
                f"Currency: {a.currency}",
                f"Statement period: {_date(a.period_start, 'classic')} to {_date(a.period_end, 'classic')}",
                f"Opening balance: {_balance(a.opening_cents)}",
            ]
        lines.append("Date | Description | Amount | Balance")
    elif a.layout == "ledger":
        lines = [f"{a.bank_name.upper()}", f"Acct No. {a.account_number}"]
        if page == 1:
            lines += [
                f"Customer: {a.account_holder}",
                f"All amounts in {a.currency}",
                f"Period from {_date(a.period_start, 'ledger')} through {_date(a.period_end, 'ledger')}",
                f"Balance brought forward {_balance(a.opening_cents)}",
            ]
        lines.append("DATE        DETAILS                         AMOUNT        BALANCE")
    else:
        lines = [f"** {a.bank_name} **  Account: {a.account_number}"]
        if page == 1:
            lines += [
                f"Holder - {a.account_holder}",
                f"Ccy {a.currency}",
                f"From {_date(a.period_start, 'compact')} To {_date(a.period_end, 'compact')}",
                f"Previous balance {_balance(a.opening_cents)}",
            ]
        lines.append("Date / Details / Amount")
    if page > 1:
        lines.append("(continued from previous page)")
    return lines


def _row(a: Account, t: Transaction) -> str:
    if a.layout == "classic":
        bal = "" if t.balance_cents is None else _balance(t.balance_cents)
        return f"{_date(t.date, 'classic')} | {t.description} | {_money(t.amount_cents, 'classic')} | {bal}"
    if a.layout == "ledger":
        bal = "" if t.balance_cents is None else _balance(t.balance_cents)
        return (
            f"{_date(t.date, 'ledger')}  {t.description:<30}  {_money(t.amount_cents, 'ledger'):>14}  {bal}"
        )
    return f"{_date(t.date, 'compact')} / {t.description} / {_money(t.amount_cents, 'compact')}"


def _closing(a: Account) -> str:
    label = {"classic": "Closing balance:", "ledger": "Balance carried forward", "compact": "New balance"}
    return f"{label[a.layout]} {_balance(a.closing_cents)}"


def render(a: Account, page_count: int, rng: random.Random, noise: float) -> list[str]:
    """Spread the transactions over `page_count` pages; the table continues across breaks."""
    per_page = [len(a.transactions) // page_count] * page_count
    for i in range(len(a.transactions) % page_count):
        per_page[i] += 1
    pages, start = [], 0
    for p in range(1, page_count + 1):
        rows = [_row(a, t) for t in a.transactions[start : start + per_page[p - 1]]]
        start += per_page[p - 1]
        filler = [_noisy(f, rng) if rng.random() < noise else f for f in rng.sample(FILLER, 2)]
        lines = _header(a, p, page_count) + rows
        if p == page_count:
            lines.append(_closing(a))
        lines += ["", *filler, f"Page {p} of {page_count}"]
        pages.append("\n".join(lines))
    return pages


def make_account(
    rng: random.Random,
    document_id: str,
    account_number: str,
    pages: int,
    first_document_page: int = 1,
    noise: float = 0.2,
    rows_per_page: tuple[int, int] = (6, 12),
) -> Account:
    layout = rng.choice(LAYOUTS)
    start = date(2026, rng.randint(1, 10), 1)
    end = start + timedelta(days=29)
    opening = rng.randint(-50_000, 900_000)
    n = sum(rng.randint(*rows_per_page) for _ in range(pages))
    days = sorted(rng.randint(0, 29) for _ in range(n))
    printed = layout != "compact"
    balance, txs = opening, []
    for d in days:
        amount = rng.choice([-1, -1, -1, 1]) * rng.randint(100, 250_000)
        balance += amount
        txs.append(
            Transaction(
                start + timedelta(days=d), rng.choice(MERCHANTS), amount, balance if printed else None
            )
        )
    a = Account(
        document_id=document_id,
        account_number=account_number,
        bank_name=rng.choice(BANKS),
        account_holder=rng.choice(NAMES),
        currency=rng.choice(["USD", "EUR", "GBP"]),
        period_start=start,
        period_end=end,
        opening_cents=opening,
        layout=layout,
        transactions=txs,
        first_document_page=first_document_page,
    )
    a.pages = render(a, pages, rng, noise)
    return a


def generate(
    documents: int,
    seed: int = 0,
    accounts_per_document: tuple[int, int] = (1, 3),
    pages_per_account: tuple[int, int] = (1, 6),
    noise: float = 0.2,
) -> list[Account]:
    """Documents of one or more accounts; account numbers are unique across the corpus."""
    rng = random.Random(seed)
    out: list[Account] = []
    for d in range(documents):
        doc = f"doc-{seed}-{d:05d}"
        page = 1
        for _ in range(rng.randint(*accounts_per_document)):
            number = f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}-{len(out):06d}"
            n = rng.randint(*pages_per_account)
            out.append(make_account(rng, doc, number, n, page, noise))
            page += n
    return out


def interleave(accounts: list[Account], seed: int = 0) -> list[PageEvent]:
    """All pages of all accounts, accounts interleaved at random, each account's pages in order."""
    rng = random.Random(seed)
    queues = [a.events() for a in accounts]
    out: list[PageEvent] = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


# ---- the parser: what the simulator's "model" reads from a page ------------------------------

_NUM = r"-?[\d,]+\.\d{2}"
_SCALARS: list[tuple[str, re.Pattern[str]]] = [
    ("account_number", re.compile(r"(?:Account number:|Acct No\.|Account:)\s*([\d-]+)")),
    ("account_holder", re.compile(r"(?:Account holder:|Customer:|Holder -)\s*(.+)")),
    ("currency", re.compile(r"(?:Currency:|All amounts in|Ccy)\s*([A-Z]{3})")),
    (
        "opening_balance",
        re.compile(rf"(?:Opening balance:|Balance brought forward|Previous balance)\s*({_NUM})"),
    ),
    ("closing_balance", re.compile(rf"(?:Closing balance:|Balance carried forward|New balance)\s*({_NUM})")),
]
_PERIOD = re.compile(r"(?:Statement period:|Period from|From)\s*(.+?)\s+(?:to|through|To)\s+(.+)")
_ROWS = {
    "classic": re.compile(rf"^(\d{{4}}-\d\d-\d\d) \| (.+?) \| ({_NUM}) \| ({_NUM})?$"),
    "ledger": re.compile(rf"^(\d\d/\d\d/\d{{4}})  (.+?)\s+([\d,]+\.\d{{2}} (?:DR|CR))  ({_NUM})?$"),
    "compact": re.compile(r"^(\d\d [A-Z][a-z]{2} \d{4}) / (.+?) / (\d+\.\d{2}[+-])$"),
}


def _parse_date(s: str) -> str:
    s = s.strip()
    if re.fullmatch(r"\d{4}-\d\d-\d\d", s):
        return s
    if m := re.fullmatch(r"(\d\d)/(\d\d)/(\d{4})", s):
        return f"{m[3]}-{m[2]}-{m[1]}"
    day, mon, year = s.split()
    return f"{year}-{MONTHS.index(mon) + 1:02d}-{int(day):02d}"


def _parse_amount(s: str) -> float:
    s = s.replace(",", "").strip()
    if s.endswith(("DR", "CR")):
        return -float(s[:-2]) if s.endswith("DR") else float(s[:-2])
    if s.endswith(("+", "-")):
        return -float(s[:-1]) if s.endswith("-") else float(s[:-1])
    return float(s)


def parse_page(text: str) -> dict[str, Any]:
    """Fields found on one page; `transactions` in the order printed."""
    found: dict[str, Any] = {}
    lines = text.splitlines()
    head = lines[0] if lines else ""
    if m := re.match(r"\*\* (.+?) \*\*", head):
        found["bank_name"] = m[1]
    elif head.endswith(" - Account Statement"):
        found["bank_name"] = head.removesuffix(" - Account Statement")
    elif head.isupper() and head:
        found["bank_name"] = next((b for b in BANKS if b.upper() == head), head.title())
    for name, pattern in _SCALARS:
        if m := pattern.search(text):
            value = m[1].strip()
            found[name] = _parse_amount(value) if name.endswith("balance") else value
    if m := _PERIOD.search(text):
        found["statement_period_start"] = _parse_date(m[1])
        found["statement_period_end"] = _parse_date(m[2])
    txs = []
    for line in lines:
        for pattern in _ROWS.values():
            if m := pattern.match(line):
                bal = m.groups()[3] if len(m.groups()) > 3 else None
                txs.append(
                    {
                        "date": _parse_date(m[1]),
                        "description": m[2].strip(),
                        "amount": _parse_amount(m[3]),
                        "balance": _parse_amount(bal) if bal else None,
                    }
                )
                break
    if txs:
        found["transactions"] = txs
    return found
