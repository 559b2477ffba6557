"""What a tool's two faces share: ``dllab <tool>`` (``tui_lab/commands/``) and the app's Tools
screen (``tui_lab/widgets/tool_*.py``) both call these.

One module per concern: ``limits`` (the caps on a tool's numbers), ``specs`` (which recipe a tool
works on), ``gradcheck`` and ``critical`` (the tools' own logic). No argparse, no printing, no
Textual here; heavy imports (torch, the engine) stay inside the functions.
"""
