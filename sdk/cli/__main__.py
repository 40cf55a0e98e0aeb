from sseaun.sdk.cli import main

raise SystemExit(main())
