"""Plain-text rendering of the walkthrough, the document comparison and the optimizer trace.

Plain text rather than rich tables: the output is read in terminals of any width, pasted into
issues and compared in tests, and fixed columns keep each number beside its formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forgeml.scratch.document import ComparisonRow, DocumentComparison
from forgeml.scratch.trace import OptimizerTrace, ParameterTrace
from forgeml.scratch.walkthrough import Explanation, Numbers

_PHASES = {
    "given": "Given",
    "forward": "Forward pass",
    "loss": "Loss",
    "backward": "Backward pass (chain rule, output layer first)",
    "update": "Update: gradient descent subtracts the gradient",
}


def format_numbers(value: Numbers | str | None, decimals: int = 6) -> str:
    """Format a number, vector or matrix with ``decimals`` places, the document's way: ``[0.5, 1.2]``."""
    if value is None:
        return "(not computed)"
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "[" + ", ".join(format_numbers(item, decimals) for item in value) + "]"
    return f"{value:.{decimals}f}"


def render_explanation(explanation: Explanation) -> str:
    """The walkthrough: one line per value, ``symbol = formula = value``, grouped by phase."""
    network = explanation.network
    sizes = [len(network.inputs)] + [len(layer.weight) for layer in network.weights]
    loss_step = next(step for step in explanation.steps if step.key == "loss")
    title = "the document's section 4.3 example" if network.is_document_example() else "your network"
    lines = [
        f"forgeml explain: {title}, one step of gradient descent on one sample",
        f"network {' -> '.join(map(str, sizes))}, activations {', '.join(network.activations)}, "
        f"loss {network.loss} = {loss_step.formula}, learning rate α = {explanation.learning_rate:g}",
    ]
    phase = ""
    for step in explanation.steps:
        if step.phase != phase:
            phase = step.phase
            lines += ["", _PHASES[phase]]
        lines.append(f"  {step.symbol:<10} = {step.formula:<40} = {format_numbers(step.value)}")
    lower = explanation.loss_after < explanation.loss
    direction = "lower: the step went downhill" if lower else "not lower: try a smaller --lr"
    lines.append(f"  (the loss after the update is {direction})")
    return "\n".join(lines)


def render_comparison(comparison: DocumentComparison) -> str:
    """Every step of the document's example: its printed value, the right value and, when wrong, why."""
    wrong = len(comparison.wrong)
    lines = [
        f"The document's section 4.3 example, step by step: {wrong} of {len(comparison.rows)} are wrong",
        "(a printed number counts as right when it rounds to the correct value at the decimals printed)",
    ]
    for row in comparison.rows:
        lines += [""] + _comparison_lines(row)
    lines += ["", f"{wrong} problems. Run `forgeml explain` for the corrected walkthrough."]
    return "\n".join(lines)


def _comparison_lines(row: ComparisonRow) -> list[str]:
    mark = "ok   " if row.matches else "WRONG"
    lines = [
        f"{mark} {row.step}",
        f"      document: {format_numbers(row.document, row.decimals)}",
        f"      correct:  {format_numbers(row.correct)}",
    ]
    if row.why:
        lines.append(f"      why:      {row.why}")
    return lines


def render_trace(trace: OptimizerTrace) -> str:
    """Each optimizer step as a table: one row per scalar parameter, one column per piece of state."""
    hyper = ", ".join(f"{name} = {value:g}" for name, value in trace.hyperparameters.items())
    lines = [f"forgeml explain --optimizer {trace.optimizer}: {trace.label}", f"  {hyper}"]
    lines += [f"  {formula}" for formula in trace.formulas]
    for step in trace.steps:
        factors = "".join(f"   {name} = {value:.6f}" for name, value in step.bias_corrections.items())
        lines += ["", f"step t = {step.t}   loss before = {step.loss:.6f}{factors}"]
        columns = ["g", *step.parameters[0].state, "step", "new value"]
        lines.append(f"  {'parameter':<12}" + "".join(f"{name:>14}" for name in columns))
        for parameter in step.parameters:
            lines += _trace_rows(parameter)
    lines += ["", f"loss after {len(trace.steps)} steps = {trace.final_loss:.6f}"]
    return "\n".join(lines)


def _trace_rows(parameter: ParameterTrace) -> list[str]:
    rows = []
    for flat_index, index in enumerate(np.ndindex(*parameter.shape)):
        values: Sequence[float] = [
            parameter.gradient[flat_index],
            *(state[flat_index] for state in parameter.state.values()),
            parameter.update[flat_index],
            parameter.after[flat_index],
        ]
        label = f"{parameter.name}[{','.join(map(str, index))}]"
        # 6 significant digits: Adam's v is often ~1e-7 and would print as 0.000000 with fixed decimals.
        rows.append(f"  {label:<12}" + "".join(f"{value:>14.6g}" for value in values))
    return rows
