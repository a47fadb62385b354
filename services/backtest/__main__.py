from services.backtest.main import main

main()
