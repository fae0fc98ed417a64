"""Connectors: vendor payloads in, cases out; packets in, vendor payloads out.

Importers (one module per vendor) read the shapes the vendors' public APIs define into an
`ImportedTicket`; `ticket.to_case` maps it onto the case format with the pack's field
mapping (`connectors.yaml`). Emitters (`emit.py`) turn a packet into what a vendor's API
accepts; the only customer-facing text they carry is the verified customer update.
Nothing here decides severity or writes customer text.
"""
