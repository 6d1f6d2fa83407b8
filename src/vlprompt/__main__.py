from vlprompt.cli import main

raise SystemExit(main())
