"""Erlang C staffing: how many agents a queue needs for a service level.

Traffic A = calls x AHT / interval (Erlangs). The probability that a call waits, Erlang C, is computed from
Erlang B by its stable recursion B(n) = A B(n-1) / (n + A B(n-1)), then C = N B / (N - A (1 - B)); the
service level for answer-time target t is 1 - C exp(-(N - A) t / AHT) and the average speed of answer
C AHT / (N - A). Published check (callcentrehelper.com's worked example): 100 calls in 30 min at 180 s
AHT, 80 % in 20 s -> 14 agents (SL 88.8 %, ASA 7.8 s, occupancy 71.4 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Staffing:
    agents: int
    traffic_erlangs: float
    probability_of_waiting: float
    service_level: float
    average_speed_of_answer: float
    occupancy: float


def traffic(calls: float, interval_seconds: float, aht_seconds: float) -> float:
    if interval_seconds <= 0 or aht_seconds <= 0 or calls < 0:
        raise ValueError("calls must be >= 0, interval and AHT > 0")
    return calls * aht_seconds / interval_seconds


def erlang_c(agents: int, traffic_erlangs: float) -> float:
    """Probability that a call has to wait (1.0 when the agents cannot carry the traffic)."""
    if agents <= traffic_erlangs:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic_erlangs * blocking / (n + traffic_erlangs * blocking)
    return agents * blocking / (agents - traffic_erlangs * (1 - blocking))


def staffing(
    agents: int, calls: float, interval_seconds: float, aht_seconds: float, target_answer_seconds: float
) -> Staffing:
    load = traffic(calls, interval_seconds, aht_seconds)
    wait_probability = erlang_c(agents, load)
    if agents <= load:
        return Staffing(agents, load, 1.0, 0.0, math.inf, 1.0)
    service = 1 - wait_probability * math.exp(-(agents - load) * target_answer_seconds / aht_seconds)
    asa = wait_probability * aht_seconds / (agents - load)
    return Staffing(agents, load, wait_probability, service, asa, load / agents)


def agents_required(
    calls: float,
    interval_seconds: float,
    aht_seconds: float,
    target_service_level: float = 0.8,
    target_answer_seconds: float = 20.0,
    max_occupancy: float = 1.0,
) -> Staffing:
    """The fewest agents that meet the service level (and keep occupancy at or under `max_occupancy`)."""
    if not 0 < target_service_level < 1:
        raise ValueError("the target service level is a fraction between 0 and 1, e.g. 0.8")
    load = traffic(calls, interval_seconds, aht_seconds)
    agents = max(1, math.floor(load) + 1)
    while True:
        result = staffing(agents, calls, interval_seconds, aht_seconds, target_answer_seconds)
        if result.service_level >= target_service_level and result.occupancy <= max_occupancy:
            return result
        agents += 1
