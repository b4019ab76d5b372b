"""The indicator codes the gateway uploads: unit and the clauses each one serves.

The starting set and its clauses come from ``shared/docs/brief.md`` ("Indicator data"); seed
numbers are the documents' own: 000 = T/IMAS 104-2025 (rating platform), 002 = T/CAICI draft
(scoring items), 004 = GB/T 20299.3 revision draft (property management).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    code: str
    unit: str
    clauses: tuple[str, ...]
    meaning: str


_SPECS = (
    IndicatorSpec("device.online_rate", "ratio", ("004 8.1.7", "000 5.4"),
                  "time-weighted share of configured devices that reported within their expected interval"),
    IndicatorSpec("data.completeness", "ratio", ("000 5.4",),
                  "share of the readings expected while the gateway ran that were collected (000 5.4 is cited as "
                  "the source of the 98 % threshold only: it speaks of enterprise basic-information fields)"),
    IndicatorSpec("gateway.uptime", "ratio", ("004 8.1.7",),
                  "share of the period the gateway ran; the coverage of completeness and online rate"),
    IndicatorSpec("inventory.field_completeness", "ratio", ("000 5.4", "004 7.3.3 a)"),
                  "share of the required device-inventory fields filled in (seed 000 5.4: at least 98 %)"),
    IndicatorSpec("fire.hydrant_pressure_compliance", "ratio", ("004 8.3.3", "002 5.5.4"),
                  "share of samples with hydrant / main pressure inside its configured range"),
    IndicatorSpec("fire.water_level_compliance", "ratio", ("004 8.3.3 c) 2)", "003 7.1.6.2"),
                  "share of samples with fire pool / tank level inside its configured range"),
    IndicatorSpec("fire.lane_block_events", "count", ("004 8.3.5", "002 5.5.1.2 c)"),
                  "fire-lane blocking episodes that started in the period"),
    IndicatorSpec("fire.lane_block_minutes", "min", ("004 8.3.5", "002 5.5.1.2 c)"),
                  "minutes of the period during which a fire lane was blocked (summed over lanes)"),
    IndicatorSpec("fire.lane_clear_time_p50", "min", ("004 8.3.5", "002 5.5.1.2 c)"),
                  "median minutes from blocked to cleared, for episodes that started in the period"),
    IndicatorSpec("fire.ebike_entry_events", "count", ("004 7.3.3 b)", "002 5.4.3.2 d)"),
                  "e-bikes seen entering buildings, unit doors or lifts"),
    IndicatorSpec("alarm.closure_rate", "ratio", ("002 5.2.1.2 d)", "002 5.5.4.2 b)"),
                  "share of alarms raised in the period that were closed: resolved, or acknowledged and cleared"),
    IndicatorSpec("alarm.resolve_time_p50", "min", ("002 5.2.1.2 d)", "002 5.5.4.2 b)"),
                  "median minutes from raised to resolved, for alarms raised in the period"),
    IndicatorSpec("energy.electricity_kwh", "kWh", ("004 8.4.8", "002 5.3.4.2"),
                  "electricity consumption per meter, per sub-item and in total"),
    IndicatorSpec("energy.water_m3", "m3", ("004 8.4.8", "002 5.3.4.2"),
                  "water consumption per meter, per sub-item and in total"),
    IndicatorSpec("energy.gas_m3", "m3", ("004 8.4.8 d)", "002 5.3.4.2"),
                  "gas consumption per meter, per sub-item and in total"),
    IndicatorSpec("energy.heat_kwh", "kWh", ("004 8.4.8 d)", "002 5.3.4.2"),
                  "heat (heating / cooling energy) consumption per meter, per sub-item and in total"),
    IndicatorSpec("energy.abnormal_events", "count", ("004 8.4.8 b)-c)",),
                  "abnormal consumption alarms raised (night flow, over quota, sudden jump)"),
    IndicatorSpec("facility.monitored_kinds", "count", ("002 5.6.5.2 a)",),
                  "public-facility monitoring kinds with at least one device reporting"),
)

SPECS: dict[str, IndicatorSpec] = {s.code: s for s in _SPECS}
CODES: tuple[str, ...] = tuple(SPECS)

# Emitted for every period whatever the configuration, so its presence marks a period as done.
MARKER_CODE = "data.completeness"

# Device category -> public-facility monitoring kind (002 5.6.5.2: at least five kinds).
FACILITY_KINDS: dict[str, str] = {
    "lighting": "lighting",
    "environment": "environment",
    "water_supply": "water_supply_drainage",
    "hvac": "hvac",
    "electricity": "energy_metering",
    "water": "energy_metering",
    "gas": "energy_metering",
    "heat": "energy_metering",
    "ev_charging": "ev_charging",
    "power_distribution": "power_distribution",
}
