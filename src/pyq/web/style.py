"""The dashboard's one stylesheet, inlined in every page (no asset files to serve or cache)."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{background:#8b1a1a;color:#fff;padding:8px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
header h1{font-size:20px;margin:0}
header nav{display:flex;gap:4px;flex-wrap:wrap}
header nav a{color:#fff;text-decoration:none;padding:3px 8px;border-radius:4px}
header nav a.on,header nav a:hover{background:#b33}
#refresh{margin-left:auto}
main{padding:10px 20px}
h2{font-size:18px;margin:6px 0 10px}
h3{font-size:15px;margin:6px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:22px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:14px 0;padding:6px 14px}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;font-size:13px;vertical-align:top}
form{display:inline}
button{font-size:12px;padding:1px 8px;cursor:pointer}
.bar{margin:6px 0;display:flex;gap:6px;flex-wrap:wrap}
.filter{display:block;margin:6px 0}
.filter input{width:320px}
.pager span,.pager a{margin-right:6px}
.msg{background:#fff6d6;border:1px solid #e5c100;padding:6px 10px;border-radius:6px}
.empty{color:#888}
pre{font-size:12px;margin:4px 0;white-space:pre-wrap;word-break:break-all}
.chart text{font-size:10px;fill:#555}
.processed{fill:#2a7ab0}.failed{fill:#c0392b}
.legend .processed{color:#2a7ab0}.legend .failed{color:#c0392b}
.args{max-width:420px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
"""
