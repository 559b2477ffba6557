"""The base of every plot: a textual-plotext plot rebuilt from its data on each show and resize."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class ReplotPlot(PlotextPlot):
    """plotext keeps no state we rely on between builds: `replot` draws everything from the
    widget's data, on a fresh figure (`fresh_plot`), whenever the data or the size changes."""

    def on_resize(self) -> None:
        self.replot()

    def fresh_plot(self):
        """The plotext module, with the previous figure's data and settings cleared."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        return plt

    def replot(self) -> None:
        raise NotImplementedError
