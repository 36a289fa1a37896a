from bulkops.cli import app

app(prog_name="bulkops")
