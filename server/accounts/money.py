"""Money as integer micro-dollars, and the pure arithmetic that turns usage into a charge.

Every amount a store keeps is an `int` of micro-dollars (1e-6 USD). Integers add exactly, so the
ledger sums to the balance change to the cent (and to the micro-dollar). Floats appear only at the
edges: prices in configuration and the numbers shown to people.

Prices are kept as micro-dollars per million tokens, per image and per video second. A charge is
computed from whole token counts in integers and rounded *up* once, per request, to a whole
micro-dollar: the gateway never under-charges, and over-charges by less than 1e-6 USD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Protocol

__all__ = [
    "MAX_USD",
    "MICROS_PER_USD",
    "TOKENS_PER_MILLION",
    "Price",
    "UsdPricing",
    "affordable_completion_tokens",
    "cost_of",
    "estimate_cost",
    "image_cost",
    "micros_to_decimal",
    "micros_to_usd",
    "usd_to_micros",
    "video_cost",
    "worst_case_completion_tokens",
    "worst_token_cost",
]

MICROS_PER_USD = 1_000_000
# The largest amount a store can keep: its micro-dollars must fit a signed 64-bit column.
MAX_USD = (2**63 - 1) // MICROS_PER_USD
TOKENS_PER_MILLION = 1_000_000
_MICRO = Decimal(1) / MICROS_PER_USD


def usd_to_micros(usd: float | int | str | Decimal) -> int:
    """The nearest whole micro-dollar to a USD amount (half up), read from its decimal text.

    Floats go through `repr`, so `0.1` is 100000 micros, not 100000.00000000001 rounded by luck.
    """
    if isinstance(usd, bool):
        raise TypeError("a USD amount cannot be a bool")
    value = Decimal(repr(usd)) if isinstance(usd, float) else Decimal(usd)
    if not value.is_finite():
        raise ValueError(f"not a finite USD amount: {usd!r}")
    return int((value * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_usd(micros: int) -> float:
    """A float USD amount, for display and for fields that are floats on the wire."""
    return micros / MICROS_PER_USD


def micros_to_decimal(micros: int) -> Decimal:
    """The exact USD amount."""
    return Decimal(micros) * _MICRO


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _whole(name: str, value: int) -> int:
    # Prices here are micros; a float is almost always a USD price passed by mistake (1e6 too small).
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int of micro-dollars (use Price.from_usd for USD prices)")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def cost_of(
    prompt_tokens: int,
    completion_tokens: int,
    input_per_million: int,
    output_per_million: int,
    *,
    cached_tokens: int = 0,
    cached_input_per_million: int | None = None,
    cache_write_tokens: int = 0,
    cache_write_per_million: int | None = None,
    audio_prompt_tokens: int = 0,
    audio_input_per_million: int | None = None,
    reasoning_tokens: int = 0,
    reasoning_per_million: int | None = None,
    audio_completion_tokens: int = 0,
    audio_output_per_million: int | None = None,
) -> int:
    """The charge in micros for a token usage, with prices in micros per million tokens.

    `prompt_tokens` includes `cached_tokens` (read from a prompt cache), `cache_write_tokens`
    (written to one) and `audio_prompt_tokens`, as OpenAI's usage shape counts them; likewise
    `completion_tokens` includes `reasoning_tokens` and `audio_completion_tokens`. Each of those
    parts is billed at its own price when the deployment has one (`cached_input_per_million`,
    `cache_write_per_million`, `audio_input_per_million`, `reasoning_per_million`,
    `audio_output_per_million`), else as the rest of the prompt (input price) or of the reply
    (output price).
    """
    prompt = _whole("prompt_tokens", prompt_tokens)
    completion = _whole("completion_tokens", completion_tokens)
    cached = _whole("cached_tokens", cached_tokens)
    written = _whole("cache_write_tokens", cache_write_tokens)
    input_price = _whole("input_per_million", input_per_million)
    output_price = _whole("output_per_million", output_per_million)
    cached_price = input_price if cached_input_per_million is None else cached_input_per_million
    write_price = input_price if cache_write_per_million is None else cache_write_per_million
    details = _Details(
        *_priced_part("audio_prompt_tokens", audio_prompt_tokens, audio_input_per_million),
        *_priced_part("reasoning_tokens", reasoning_tokens, reasoning_per_million),
        *_priced_part("audio_completion_tokens", audio_completion_tokens, audio_output_per_million),
    )
    return _token_charge(
        prompt,
        completion,
        cached,
        input_price,
        output_price,
        _whole("cached_input_per_million", cached_price),
        written,
        _whole("cache_write_per_million", write_price),
        details,
    )


@dataclass(frozen=True, slots=True)
class _Details:
    """The parts of a usage billed at a price of their own besides the cache's: audio in, reasoning
    and audio out, each with its price (a part whose model has no price of its own is given as 0
    tokens: it stays in the prompt or the reply, at the input or output price)."""

    audio_in: int = 0
    audio_in_price: int = 0
    reasoning: int = 0
    reasoning_price: int = 0
    audio_out: int = 0
    audio_out_price: int = 0


_NO_DETAILS = _Details()


def _priced_part(name: str, tokens: int, price: int | None) -> tuple[int, int]:
    tokens = _whole(name, tokens)
    if price is None:
        return 0, 0
    return tokens, _whole(name.replace("_tokens", "_price"), price)


def _token_charge(
    prompt: int,
    completion: int,
    cached: int,
    input_price: int,
    output_price: int,
    cached_price: int,
    written: int = 0,
    write_price: int = 0,
    details: _Details = _NO_DETAILS,
) -> int:
    """The charge in micros, rounded up, for counts and prices already checked.

    A usage that claims more of its parts than it has tokens is capped: the prompt's cache reads
    first, then writes, then audio; the reply's reasoning first, then audio. Nothing is charged twice.
    """
    cached = min(cached, prompt)
    written = min(written, prompt - cached)
    if details is _NO_DETAILS:
        total = (
            (prompt - cached - written) * input_price
            + cached * cached_price
            + written * write_price
            + completion * output_price
        )
        return _ceil_div(total, TOKENS_PER_MILLION)
    audio_in = min(details.audio_in, prompt - cached - written)
    reasoning = min(details.reasoning, completion)
    audio_out = min(details.audio_out, completion - reasoning)
    total = (
        (prompt - cached - written - audio_in) * input_price
        + cached * cached_price
        + written * write_price
        + audio_in * details.audio_in_price
        + (completion - reasoning - audio_out) * output_price
        + reasoning * details.reasoning_price
        + audio_out * details.audio_out_price
    )
    return _ceil_div(total, TOKENS_PER_MILLION)


def image_cost(count: int, per_image: int) -> int:
    """The charge in micros for `count` images at `per_image` micros each."""
    return _whole("count", count) * _whole("per_image", per_image)


def video_cost(seconds: float | int, per_second: int) -> int:
    """The charge in micros for a video of `seconds` (possibly fractional), rounded up."""
    if isinstance(seconds, bool) or seconds < 0:
        raise ValueError("seconds must be a non-negative number")
    per_second = _whole("per_second", per_second)
    if not seconds or not per_second:
        return 0  # every text request asks this; skip the Decimal arithmetic
    exact = Decimal(repr(seconds) if isinstance(seconds, float) else seconds) * per_second
    return int(exact.quantize(Decimal(1), rounding=ROUND_CEILING))


def worst_case_completion_tokens(
    max_tokens: int | None,
    prompt_tokens: int,
    *,
    context_window: int | None = None,
    default_max_tokens: int = 4096,
) -> int:
    """The most completion tokens a request can produce: what a reservation must cover.

    An explicit `max_tokens` wins; otherwise whatever the context window leaves after the prompt;
    otherwise `default_max_tokens` (a deployment with neither cannot be bounded exactly).
    """
    if max_tokens is not None:
        return max(0, max_tokens)
    if context_window is not None:
        return max(0, context_window - prompt_tokens)
    return default_max_tokens


class UsdPricing(Protocol):
    """Prices in USD floats, as configuration holds them (`server.config.PricingConfig`)."""

    @property
    def input_per_million(self) -> float | None: ...
    @property
    def output_per_million(self) -> float | None: ...
    @property
    def per_image(self) -> float | None: ...
    @property
    def per_video_second(self) -> float | None: ...
    @property
    def cache_read_per_million(self) -> float | None: ...
    @property
    def cache_write_per_million(self) -> float | None: ...
    @property
    def audio_input_per_million(self) -> float | None: ...
    @property
    def audio_output_per_million(self) -> float | None: ...
    @property
    def reasoning_per_million(self) -> float | None: ...


def _micros_or_zero(usd: float | None) -> int:
    return 0 if usd is None else usd_to_micros(usd)


def _micros_or_none(usd: float | None) -> int | None:
    return None if usd is None else usd_to_micros(usd)


@dataclass(frozen=True, slots=True)
class Price:
    """A deployment's price in micro-dollars: per million tokens, per image, per video second.

    `cached_input_per_million` is the price of a prompt token read from the provider's prompt
    cache (configuration's `cache_read_per_million`), `cache_write_per_million` of one written to
    it, `audio_input_per_million` of an audio prompt token; None means the input price.
    `reasoning_per_million` and `audio_output_per_million` price the reply's reasoning and audio
    tokens; None means the output price.
    """

    input_per_million: int = 0
    output_per_million: int = 0
    cached_input_per_million: int | None = None
    per_image: int = 0
    per_video_second: int = 0
    cache_write_per_million: int | None = None
    audio_input_per_million: int | None = None
    audio_output_per_million: int | None = None
    reasoning_per_million: int | None = None
    # Whether it prices audio or reasoning tokens apart from the rest of the prompt and reply (set
    # when made: `tokens` reads it on every charge).
    prices_details: bool = field(init=False, repr=False, compare=False, default=False)
    # The dearest a prompt token and a reply token can be before anyone knows how much will be
    # cached, audio or reasoning (set when made: every reservation reads them).
    dearest_input: int = field(init=False, repr=False, compare=False, default=0)
    dearest_output: int = field(init=False, repr=False, compare=False, default=0)

    @classmethod
    def from_usd(
        cls,
        *,
        input_per_million: float | None = None,
        output_per_million: float | None = None,
        cached_input_per_million: float | None = None,
        per_image: float | None = None,
        per_video_second: float | None = None,
        cache_write_per_million: float | None = None,
        audio_input_per_million: float | None = None,
        audio_output_per_million: float | None = None,
        reasoning_per_million: float | None = None,
    ) -> Price:
        return cls(
            input_per_million=_micros_or_zero(input_per_million),
            output_per_million=_micros_or_zero(output_per_million),
            cached_input_per_million=_micros_or_none(cached_input_per_million),
            per_image=_micros_or_zero(per_image),
            per_video_second=_micros_or_zero(per_video_second),
            cache_write_per_million=_micros_or_none(cache_write_per_million),
            audio_input_per_million=_micros_or_none(audio_input_per_million),
            audio_output_per_million=_micros_or_none(audio_output_per_million),
            reasoning_per_million=_micros_or_none(reasoning_per_million),
        )

    @classmethod
    def from_pricing(cls, pricing: UsdPricing) -> Price:
        """The price of a configured model; a missing price is zero (free), a missing cache price
        the input price."""
        return cls.from_usd(
            input_per_million=pricing.input_per_million,
            output_per_million=pricing.output_per_million,
            cached_input_per_million=pricing.cache_read_per_million,
            per_image=pricing.per_image,
            per_video_second=pricing.per_video_second,
            cache_write_per_million=pricing.cache_write_per_million,
            audio_input_per_million=pricing.audio_input_per_million,
            audio_output_per_million=pricing.audio_output_per_million,
            reasoning_per_million=pricing.reasoning_per_million,
        )

    def __post_init__(self) -> None:
        _whole("input_per_million", self.input_per_million)
        _whole("output_per_million", self.output_per_million)
        for name in _OPTIONAL_PRICES:
            value = getattr(self, name)
            if value is not None:
                _whole(name, value)
        _whole("per_image", self.per_image)
        _whole("per_video_second", self.per_video_second)
        details = (
            self.audio_input_per_million is not None
            or self.audio_output_per_million is not None
            or self.reasoning_per_million is not None
        )
        object.__setattr__(self, "prices_details", details)
        dearest_input = max(
            self.input_per_million,
            self.cached_input_per_million or 0,
            self.cache_write_per_million or 0,
            self.audio_input_per_million or 0,
        )
        object.__setattr__(self, "dearest_input", dearest_input)
        dearest_output = max(
            self.output_per_million, self.reasoning_per_million or 0, self.audio_output_per_million or 0
        )
        object.__setattr__(self, "dearest_output", dearest_output)

    def tokens(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        *,
        reasoning_tokens: int = 0,
        audio_prompt_tokens: int = 0,
        audio_completion_tokens: int = 0,
    ) -> int:
        """The charge for an actual token usage (also what a cancelled stream produced).

        Reasoning and audio tokens are parts of the completion and prompt counts; they change the
        charge only where this price has a price of their own."""
        if self.prices_details:
            return self._detailed(
                prompt_tokens,
                completion_tokens,
                cached_tokens,
                cache_write_tokens,
                reasoning_tokens,
                audio_prompt_tokens,
                audio_completion_tokens,
            )
        if (
            type(prompt_tokens) is int
            and type(completion_tokens) is int
            and type(cached_tokens) is int
            and type(cache_write_tokens) is int
            and prompt_tokens >= 0
            and completion_tokens >= 0
            and cached_tokens >= 0
            and cache_write_tokens >= 0
        ):
            # Every request is charged here: the prices were checked when the Price was made, and
            # plain non-negative counts need no call per check (cost_of below says what is wrong).
            input_price = self.input_per_million
            cached_price = self.cached_input_per_million
            write_price = self.cache_write_per_million
            return _token_charge(
                prompt_tokens,
                completion_tokens,
                cached_tokens,
                input_price,
                self.output_per_million,
                input_price if cached_price is None else cached_price,
                cache_write_tokens,
                input_price if write_price is None else write_price,
            )
        return self._detailed(prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, 0, 0, 0)

    def _detailed(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int,
        cache_write_tokens: int,
        reasoning_tokens: int,
        audio_prompt_tokens: int,
        audio_completion_tokens: int,
    ) -> int:
        return cost_of(
            prompt_tokens,
            completion_tokens,
            self.input_per_million,
            self.output_per_million,
            cached_tokens=cached_tokens,
            cached_input_per_million=self.cached_input_per_million,
            cache_write_tokens=cache_write_tokens,
            cache_write_per_million=self.cache_write_per_million,
            audio_prompt_tokens=audio_prompt_tokens,
            audio_input_per_million=self.audio_input_per_million,
            reasoning_tokens=reasoning_tokens,
            reasoning_per_million=self.reasoning_per_million,
            audio_completion_tokens=audio_completion_tokens,
            audio_output_per_million=self.audio_output_per_million,
        )

    def images(self, count: int) -> int:
        return image_cost(count, self.per_image)

    def video(self, seconds: float | int) -> int:
        return video_cost(seconds, self.per_video_second)


_OPTIONAL_PRICES = (
    "cached_input_per_million",
    "cache_write_per_million",
    "audio_input_per_million",
    "audio_output_per_million",
    "reasoning_per_million",
)


def worst_token_cost(price: Price, prompt_tokens: int, completion_tokens: int) -> int:
    """The most `prompt_tokens` and `completion_tokens` can cost before anyone knows what the prompt
    cache will hit or write, or how much of the reply is reasoning or audio: every prompt token at
    the dearest of the input prices, every reply token at the dearest of the output prices."""
    dearest = price.dearest_input
    prompt = _whole("prompt_tokens", prompt_tokens)
    completion = _whole("completion_tokens", completion_tokens)
    return _token_charge(prompt, completion, 0, dearest, price.dearest_output, dearest)


def affordable_completion_tokens(price: Price, prompt_tokens: int, budget_micros: int) -> int | None:
    """The most completion tokens `budget_micros` pays for on top of the prompt (taken as in
    `worst_token_cost`); None when output is free. Exact: `worst_token_cost(price, prompt, k)` is
    within the budget for this k and above it for k + 1."""
    output = price.dearest_output
    if output == 0:
        return None
    room = budget_micros * TOKENS_PER_MILLION - _whole("prompt_tokens", prompt_tokens) * price.dearest_input
    return max(0, room // output)


def estimate_cost(
    price: Price,
    prompt_tokens: int,
    max_tokens: int | None,
    *,
    context_window: int | None = None,
    default_max_tokens: int = 4096,
) -> int:
    """The worst-case charge to reserve before the upstream call: prompt + the most it can produce.

    Before the call nobody knows what the cache will hit or write, so every prompt token is taken at
    the dearest of the input and cache prices (a cache write costs more than input at Anthropic).
    """
    completion = worst_case_completion_tokens(
        max_tokens, prompt_tokens, context_window=context_window, default_max_tokens=default_max_tokens
    )
    return worst_token_cost(price, prompt_tokens, completion)
